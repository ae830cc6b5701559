package cluster_test

const workerEnv = "MP_CLUSTER_TEST_WORKER"

func workerMain() int { return 0 }
