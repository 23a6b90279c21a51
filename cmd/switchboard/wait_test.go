package main

import "time"

// pollStep is how long poll waits between two looks at its condition.
const pollStep = 10 * time.Millisecond

// poll calls cond every pollStep until it returns true, and reports whether
// it did within limit. It is how the tests of this package wait for a real
// process or server to get somewhere: cond looks at what they show (an API
// answer, an output line, a row); it may stop the test with t.Fatal when it
// sees that the wait is in vain, such as when the process exited.
func poll(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(pollStep)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
	return true
}

// exited reports whether the process whose Wait result done carries has
// exited, and its result, which it leaves in done for others.
func exited(done chan error) (error, bool) {
	select {
	case err := <-done:
		done <- err
		return err, true
	default:
		return nil, false
	}
}
