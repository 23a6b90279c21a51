package client

// RetriesInFlight is the number of retries the Client's budget counts now;
// it is exported for the tests of package client_test only.
func (c *Client) RetriesInFlight() int {
	c.budget.mu.Lock()
	defer c.budget.mu.Unlock()
	return c.budget.retrying
}
