package client

// RetriesInFlight is the number of retries the Client's budget counts now;
// it is exported for the tests of package client_test only.
func (c *Client) RetriesInFlight() int {
	c.budget.mu.Lock()
	defer c.budget.mu.Unlock()
	return c.budget.retrying
}

// HoldMove counts a move of the Client in progress, as a stream that is
// moving does, until the returned function is called; it is exported for the
// tests of package client_test only.
func (c *Client) HoldMove() (settled func()) { return c.moves.enter() }
