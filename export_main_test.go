package mp

import "github.com/mpgo/mp/internal/wire"

// RunRequestFrame returns the frame a parent sends to run f on arg, so
// that a test can play a parent that is not one.
func RunRequestFrame[A, R any](f Func[A, R], arg A) ([]byte, error) {
	e, err := registered(f)
	if err != nil {
		return nil, err
	}
	raw, err := codecFor[A]().encode(arg)
	if err != nil {
		return nil, err
	}
	return wire.AppendFrame(nil, &wire.Frame{Kind: wire.KindRequest, ID: 1, Header: wire.AppendService(serviceRun, []byte(e.name)), Raw: raw}), nil
}
