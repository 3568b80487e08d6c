package pgwire

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"hash"

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

// endpointHash is the tls-server-end-point channel binding of the server's
// certificate (RFC 5929): its hash under the hash of its signature, SHA-256
// for MD5 and SHA-1. It is nil, and SCRAM-SHA-256-PLUS not offered, when
// the certificate is chosen per client or its signature has no hash
// (Ed25519), as PostgreSQL does.
func endpointHash(cfg *tls.Config) []byte {
	if cfg == nil || len(cfg.Certificates) != 1 || cfg.GetCertificate != nil || cfg.GetConfigForClient != nil || len(cfg.Certificates[0].Certificate) == 0 {
		return nil
	}
	leaf, err := x509.ParseCertificate(cfg.Certificates[0].Certificate[0])
	if err != nil {
		return nil
	}
	var h hash.Hash
	switch leaf.SignatureAlgorithm {
	case x509.MD5WithRSA, x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1,
		x509.SHA256WithRSA, x509.SHA256WithRSAPSS, x509.DSAWithSHA256, x509.ECDSAWithSHA256:
		h = sha256.New()
	case x509.SHA384WithRSA, x509.SHA384WithRSAPSS, x509.ECDSAWithSHA384:
		h = sha512.New384()
	case x509.SHA512WithRSA, x509.SHA512WithRSAPSS, x509.ECDSAWithSHA512:
		h = sha512.New()
	default:
		return nil
	}
	h.Write(leaf.Raw)
	return h.Sum(nil)
}
