// Package admin is the Go client of Switchboard's admin API: the provider
// registry (list, get, create, update, enable and disable, reorder, delete),
// health checks run on demand, and API tokens. The switchboard command line is
// built on it.
//
// Create one Client per server with New, then call its methods; every method
// takes a context, sends the bearer token the Client was built with (an admin
// or superadmin API token, or the bootstrap token) and returns the server's
// error answers as an *Error, the same type as client.Error:
//
//	c, err := admin.New("https://switchboard.example.com", token, nil)
//	if err != nil {
//		return err
//	}
//	providers, err := c.ListProviders(ctx)
//	if admin.IsStatus(err, http.StatusUnauthorized) {
//		// the token is missing, wrong or revoked
//	}
//
// Provider, ProviderList, CreatedToken, TokenList, CheckResult and
// CheckResults keep the server's answer as received in their JSON field, for
// callers that print it. Do reaches the endpoints this package has no method
// for.
//
// The token is sent only in the Authorization header: it never appears in an
// error returned by this package, and neither does a password in the server
// URL.
package admin
