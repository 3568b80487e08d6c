// Package freeport finds free TCP ports on the loopback interface, for the
// servers tests and benchmarks start.
package freeport

import "net"

// Get returns a port on 127.0.0.1 that was free a moment ago.
func Get() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
