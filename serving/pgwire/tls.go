package pgwire

import (
	"crypto/tls"
	"fmt"

	"github.com/jackc/pgx/v5/pgproto3"
)

// sslRequestLen is the size of an SSLRequest or GSSENCRequest packet.
const sslRequestLen = 8

// answerSSL answers an SSLRequest: 'N' without a certificate (the client
// goes on in the clear or gives up, as its sslmode says), else 'S' and a
// TLS handshake, after which the real startup packet comes encrypted.
func (ss *session) answerSSL() error {
	if ss.tls {
		return fatalf(codeProtocol, "SSLRequest on a connection that is already encrypted")
	}
	ss.plainBytes += sslRequestLen
	if ss.s.TLS == nil {
		if _, err := ss.nc.Write([]byte{'N'}); err != nil {
			return fmt.Errorf("refuse SSL: %w", err)
		}
		return nil
	}
	// Bytes the client sent after its SSLRequest, before the handshake,
	// would be read as if they came over TLS (CVE-2021-23214): refuse.
	if ss.rd.n != ss.plainBytes {
		return fatalf(codeProtocol, "received unencrypted data after SSL request")
	}
	if _, err := ss.nc.Write([]byte{'S'}); err != nil {
		return fmt.Errorf("accept SSL: %w", err)
	}
	tc := tls.Server(ss.nc, ss.s.TLS)
	if err := tc.Handshake(); err != nil { // bounded by the startup deadline
		return fmt.Errorf("TLS handshake: %w", err)
	}
	ss.nc, ss.rd.nc, ss.tls = tc, tc, true
	ss.be = pgproto3.NewBackend(ss.rd, tc)
	ss.be.SetMaxBodyLen(preAuthMaxBody)
	return nil
}

// answerGSSEnc refuses GSSAPI encryption: the client goes on in the clear
// or asks for SSL next.
func (ss *session) answerGSSEnc() error {
	ss.plainBytes += sslRequestLen
	if _, err := ss.nc.Write([]byte{'N'}); err != nil {
		return fmt.Errorf("refuse GSSAPI encryption: %w", err)
	}
	return nil
}
