package httpapi

import (
	"net/http"
	"slices"
	"strings"

	sb "github.com/switchboardhq/switchboard"
)

// route is one endpoint: its method and path pattern, the least role allowed
// to call it (RoleAnonymous = public) and its handler.
type route struct {
	Method  string
	Path    string
	Role    sb.Role
	Handler http.HandlerFunc
}

// routes lists the whole API. The OpenAPI document is tested against it.
func (s *Server) routes() []route {
	return []route{
		// Operations.
		{"GET", "/healthz", sb.RoleAnonymous, s.healthz},
		{"GET", "/readyz", sb.RoleAnonymous, s.readyz},
		{"GET", "/metrics", sb.RoleAnonymous, s.metrics.serve},
		{"GET", "/api/openapi.json", sb.RoleAnonymous, s.openAPI},

		// Sessions and tokens.
		{"POST", "/api/auth/login", sb.RoleAnonymous, s.login},
		{"POST", "/api/auth/logout", sb.RoleAnonymous, s.logout},
		{"GET", "/api/auth/me", sb.RoleClient, s.me},
		{"POST", "/api/auth/tokens", sb.RoleSuperadmin, s.createToken},
		{"GET", "/api/auth/tokens", sb.RoleSuperadmin, s.listTokens},
		{"DELETE", "/api/auth/tokens/{id}", sb.RoleSuperadmin, s.revokeToken},
		{"PUT", "/api/auth/password", sb.RoleAdmin, s.changePassword},
		{"GET", "/api/auth/methods", sb.RoleAnonymous, s.authMethods},
		{"GET", "/api/auth/oidc/login", sb.RoleAnonymous, s.oidcLogin},
		{"GET", "/api/auth/oidc/callback", sb.RoleAnonymous, s.oidcCallback},

		// Users.
		{"GET", "/api/users", sb.RoleSuperadmin, s.listUsers},
		{"POST", "/api/users", sb.RoleSuperadmin, s.createUser},
		{"GET", "/api/users/{username}", sb.RoleSuperadmin, s.getUser},
		{"PUT", "/api/users/{username}", sb.RoleSuperadmin, s.updateUser},
		{"DELETE", "/api/users/{username}", sb.RoleSuperadmin, s.deleteUser},

		// Provider registry.
		{"GET", "/api/streaming/providers", sb.RoleAdmin, s.listProviders},
		{"POST", "/api/streaming/providers", sb.RoleSuperadmin, s.createProvider},
		{"PUT", "/api/streaming/providers/priorities", sb.RoleAdmin, s.reorderProviders},
		{"GET", "/api/streaming/providers/{name}", sb.RoleAdmin, s.getProvider},
		{"PUT", "/api/streaming/providers/{name}", sb.RoleAdmin, s.updateProvider},
		{"DELETE", "/api/streaming/providers/{name}", sb.RoleSuperadmin, s.deleteProvider},
		{"GET", "/api/audit", sb.RoleAdmin, s.listAudit},
		{"GET", "/api/settings", sb.RoleAdmin, s.getSettings},
		{"PUT", "/api/settings", sb.RoleSuperadmin, s.putSettings},
		{"GET", "/api/routing", sb.RoleAdmin, s.getRouting},
		{"PUT", "/api/routing", sb.RoleSuperadmin, s.putRouting},

		// Health.
		{"GET", "/api/streaming/providers/{name}/health", sb.RoleAnonymous, s.providerHealth},
		{"GET", "/api/streaming/providers/health-check-all", sb.RoleAdmin, s.currentHealthAll},
		{"POST", "/api/streaming/providers/health-check-all", sb.RoleAdmin, s.checkAll},
		{"POST", "/api/streaming/providers/{name}/health-check", sb.RoleAdmin, s.checkProvider},
		{"GET", "/api/streaming/providers/{name}/history", sb.RoleAdmin, s.providerHistory},

		// Streams.
		{"GET", "/api/streaming/config", sb.RoleClient, s.streamingConfig},
		{"POST", "/api/streams", sb.RoleClient, s.startStream},
		{"POST", "/api/streams/{id}/heartbeat", sb.RoleClient, s.heartbeat},
		{"POST", "/api/streams/{id}/failures", sb.RoleClient, s.reportFailure},
		{"POST", "/api/streams/{id}/migrate", sb.RoleClient, s.migrateStream},
		{"POST", "/api/streams/{id}/end", sb.RoleClient, s.endStream},
		{"POST", "/api/streams/{id}/quality", sb.RoleClient, s.reportQuality},
		{"GET", "/api/streams", sb.RoleAdmin, s.listStreams},
		{"GET", "/api/streams/{id}", sb.RoleAdmin, s.getStream},
		{"GET", "/api/streaming/stats", sb.RoleAdmin, s.streamingStats},
		{"GET", "/api/streaming/quality", sb.RoleAdmin, s.providersQuality},

		// Reports.
		{"GET", "/api/reports/sla", sb.RoleAdmin, s.slaReport},
		{"GET", "/api/reports/cost", sb.RoleAdmin, s.costReport},
		{"GET", "/api/reports/quality", sb.RoleAdmin, s.qualityReport},

		// Alerts.
		{"GET", "/api/alerts/channels", sb.RoleAdmin, s.listAlertChannels},
		{"POST", "/api/alerts/channels", sb.RoleSuperadmin, s.createAlertChannel},
		{"GET", "/api/alerts/channels/{name}", sb.RoleAdmin, s.getAlertChannel},
		{"PUT", "/api/alerts/channels/{name}", sb.RoleSuperadmin, s.updateAlertChannel},
		{"DELETE", "/api/alerts/channels/{name}", sb.RoleSuperadmin, s.deleteAlertChannel},
		{"POST", "/api/alerts/channels/{name}/test", sb.RoleAdmin, s.testAlertChannel},
		{"GET", "/api/alerts/rules", sb.RoleAdmin, s.listAlertRules},
		{"POST", "/api/alerts/rules", sb.RoleAdmin, s.createAlertRule},
		{"GET", "/api/alerts/rules/{name}", sb.RoleAdmin, s.getAlertRule},
		{"PUT", "/api/alerts/rules/{name}", sb.RoleAdmin, s.updateAlertRule},
		{"DELETE", "/api/alerts/rules/{name}", sb.RoleAdmin, s.deleteAlertRule},
		{"GET", "/api/alerts/deliveries", sb.RoleAdmin, s.listAlertDeliveries},
		// Maintenance windows.
		{"POST", "/api/maintenance", sb.RoleAdmin, s.createMaintenance},
		{"GET", "/api/maintenance", sb.RoleAdmin, s.listMaintenance},
		{"GET", "/api/maintenance/{id}", sb.RoleAdmin, s.getMaintenance},
		{"POST", "/api/maintenance/{id}/end", sb.RoleAdmin, s.endMaintenance},

		// Probe agents: what probes need, and their results per region.
		{"GET", "/api/agent/providers", sb.RoleAgent, s.agentProviders},
		{"POST", "/api/agent/results", sb.RoleAgent, s.agentResults},

		// Events.
		{"GET", "/api/events", sb.RoleClient, s.events},

		// Dashboard: the page and its files; its data comes from the API.
		{"GET", dashboardIndexPath, sb.RoleAnonymous, s.dashboardIndex},
		{"GET", dashboardAssetsPath, sb.RoleAnonymous, s.dashboardAsset},
	}
}

// reservedNames returns the literal path segments that stand where a
// provider's {name} stands in rts, with the same segments before it, such as
// "priorities" beside "{name}" under /api/streaming/providers/. A provider
// may not take one of those names: its paths would reach the literal routes.
// The list follows the routes, so a literal route added later is covered.
func reservedNames(rts []route) []string {
	var out []string
	for _, rt := range rts {
		segs := strings.Split(rt.Path, "/")
		i := slices.Index(segs, "{name}")
		if i < 0 {
			continue
		}
		for _, other := range rts {
			o := strings.Split(other.Path, "/")
			if len(o) <= i || !slices.Equal(o[:i], segs[:i]) {
				continue
			}
			if lit := o[i]; lit != "" && !strings.HasPrefix(lit, "{") && !slices.Contains(out, lit) {
				out = append(out, lit)
			}
		}
	}
	slices.Sort(out)
	return out
}
