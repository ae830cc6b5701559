package mp

// Main must be the first statement of main and of TestMain. In a child
// process started by mp it runs the requested task and exits; in any other
// process it returns at once.
func Main() {}
