package main

import (
	"fmt"
	"net"
	"strings"

	"github.com/gridlake/gridlake/auth"
	"github.com/gridlake/gridlake/config"
)

// tokenBanner is the banner's token line: the demo token and how curl, the
// dashboard and psql use it, or where users come from once configured.
// sv is nil in a process without the serving layer.
func tokenBanner(acc *access, cfg *config.Config, base string, sv *servingStack) string {
	if acc.demoToken == "" {
		return fmt.Sprintf("  token   users and tokens come from the users file %s (gridlake auth add-token NAME --role ROLE)\n", cfg.UsersPath())
	}
	tok := acc.demoToken
	var b strings.Builder
	fmt.Fprintf(&b, "  token   %s   (demo admin token, kept in %s)\n", tok, auth.DemoTokenPath(cfg.DataDir))
	fmt.Fprintf(&b, "          curl -H 'Authorization: Bearer %s' %s/v1/status\n", tok, base)
	fmt.Fprintf(&b, "          dashboard: sign in at %s%s as %s with the token\n", base, auth.LoginPath, auth.DemoName)
	if sv != nil && sv.pgAddr != "" {
		host, port, _ := net.SplitHostPort(sv.pgAddr)
		fmt.Fprintf(&b, "          PGPASSWORD=%s psql -h %s -p %s -U %s\n", tok, host, port, auth.DemoName)
	}
	b.WriteString("          binds loopback only until users are configured (gridlake auth add-token NAME --role ROLE)\n")
	return b.String()
}
