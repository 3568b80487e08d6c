package auth

import (
	"fmt"
	"net"
	"sort"
	"strings"
)

// IsLoopback reports whether a listen address only accepts connections
// from this machine. An empty host (":8080") listens everywhere.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckBind refuses to listen beyond this machine while no users or tokens
// are configured: the demo token alone must never face a network. binds
// maps each setting (http.addr) to its address; empty addresses are off.
func CheckBind(configured bool, binds map[string]string) error {
	if configured {
		return nil
	}
	var bad []string
	for key, addr := range binds {
		if addr != "" && !IsLoopback(addr) {
			bad = append(bad, fmt.Sprintf("%s=%s", key, addr))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	return fmt.Errorf("refusing to listen on %s without configured users: create one with `gridlake auth add-token NAME --role admin` (it writes auth.users_file), or bind 127.0.0.1", strings.Join(bad, ", "))
}
