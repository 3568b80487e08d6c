package pgwire

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/gridlake/gridlake/auth"
)

// Authenticator says how a PostgreSQL user proves who they are: the SCRAM
// verifier of their password (or token) and the principal they become.
// *auth.Directory is one.
type Authenticator interface {
	SCRAM(user string) (auth.Verifier, auth.Principal, bool)
}

const (
	scramMechanism = "SCRAM-SHA-256"
	// scramPlus binds the exchange to the TLS certificate the client saw
	// (RFC 5929 tls-server-end-point), so a man in the middle with
	// another certificate cannot relay it.
	scramPlus     = "SCRAM-SHA-256-PLUS"
	scramCBinding = "tls-server-end-point"
	// scramNonceLen is PostgreSQL's raw server nonce length.
	scramNonceLen = 18
	// mockSaltLen is the salt length of the verifiers auth writes, so a
	// mock exchange looks like a real one.
	mockSaltLen = 16
)

var b64 = base64.StdEncoding

// authenticate runs a SCRAM-SHA-256 exchange (RFC 5802, 7677) as
// PostgreSQL does: the user is the startup packet's (the name in the SCRAM
// message is ignored); over TLS, SCRAM-SHA-256-PLUS is offered too. An
// unknown user gets a mock exchange with a salt derived from the name, so
// the answers do not tell whether the user exists; it fails at the end
// like a wrong password.
func (ss *session) authenticate(user string) (auth.Principal, error) {
	s := ss.s
	v, p, known := s.Auth.SCRAM(user)
	if !known {
		v = s.mockVerifier(user)
	}
	mechs, endpoint := []string{scramMechanism}, []byte(nil)
	if ss.tls && s.endpoint != nil {
		mechs, endpoint = []string{scramPlus, scramMechanism}, s.endpoint
	}
	ss.be.Send(&pgproto3.AuthenticationSASL{AuthMechanisms: mechs})
	if err := ss.be.Flush(); err != nil {
		return p, fmt.Errorf("ask for SCRAM: %w", err)
	}
	data, err := ss.receiveSASL("SASLInitialResponse")
	if err != nil {
		return p, err
	}
	mech, first, err := parseSASLInitial(data)
	if err != nil {
		return p, err
	}
	if !slices.Contains(mechs, mech) {
		return p, fatalf(codeProtocol, "client selected an invalid SASL authentication mechanism %q: the server offers %s", mech, strings.Join(mechs, ", "))
	}
	cf, err := parseClientFirst(first)
	if err != nil {
		return p, err
	}
	cbind, err := bindingInput(mech, cf, endpoint)
	if err != nil {
		return p, err
	}
	raw := make([]byte, scramNonceLen)
	if _, err := io.ReadFull(s.random(), raw); err != nil {
		return p, fmt.Errorf("SCRAM nonce: %w", err)
	}
	nonce := cf.nonce + b64.EncodeToString(raw)
	serverFirst := "r=" + nonce + ",s=" + b64.EncodeToString(v.Salt) + ",i=" + strconv.Itoa(v.Iterations)
	ss.be.Send(&pgproto3.AuthenticationSASLContinue{Data: []byte(serverFirst)})
	if err := ss.be.Flush(); err != nil {
		return p, fmt.Errorf("send SCRAM server-first message: %w", err)
	}
	if data, err = ss.receiveSASL("SASLResponse"); err != nil {
		return p, err
	}
	cfin, err := parseClientFinal(string(data))
	if err != nil {
		return p, err
	}
	if cfin.cbind != cbind {
		return p, fatalf(codeProtocol, "SCRAM channel binding check failed: the client-final message does not match the GS2 header %q and the channel", cf.gs2Header)
	}
	if cfin.nonce != nonce {
		return p, fatalf(codeProtocol, "SCRAM nonce mismatch")
	}
	authMsg := cf.bare + "," + serverFirst + "," + cfin.withoutProof
	sig := auth.HMAC(v.StoredKey, authMsg)
	for i := range sig {
		sig[i] ^= cfin.proof[i] // now the ClientKey
	}
	stored := sha256.Sum256(sig)
	if !hmac.Equal(stored[:], v.StoredKey) || !known {
		return p, fatalf(codeBadPassword, "password authentication failed for user %q", clip(user))
	}
	if !p.May(auth.Analyst) {
		return p, fatalf(codeNoAuth, "insufficient role: SQL needs %s, %s has %s", auth.Analyst, user, p.Role)
	}
	ss.be.Send(&pgproto3.AuthenticationSASLFinal{Data: []byte("v=" + b64.EncodeToString(auth.HMAC(v.ServerKey, authMsg)))})
	return p, nil
}

// bindingInput is what the client-final message must carry as its channel
// binding: the GS2 header, and with SCRAM-SHA-256-PLUS the certificate's
// tls-server-end-point hash. endpoint is nil when PLUS was not offered.
func bindingInput(mech string, cf clientFirst, endpoint []byte) (string, error) {
	switch plus := mech == scramPlus; {
	case plus && cf.flag != "p="+scramCBinding:
		return "", fatalf(codeProtocol, "%s needs channel binding %s, the client sent %q", scramPlus, scramCBinding, clip(cf.flag))
	case plus:
		return cf.gs2Header + string(endpoint), nil
	case strings.HasPrefix(cf.flag, "p="):
		return "", fatalf(codeProtocol, "the client selected %s without channel binding, but the SCRAM message includes channel binding data", scramMechanism)
	case cf.flag == "y" && endpoint != nil:
		// The client can bind but believes the server cannot: someone
		// removed SCRAM-SHA-256-PLUS from the offer.
		return "", fatalf(codeProtocol, "SCRAM channel binding negotiation error: %s was offered", scramPlus)
	}
	return cf.gs2Header, nil
}

// receiveSASL reads the body of the client's next 'p' message. pgproto3
// would decode a SASLInitialResponse itself, but its decoder slices past a
// body too short for its length field; read as a SASLResponse the body
// comes raw, and parseSASLInitial checks it. The body is already bounded
// by the pre-authentication message limit.
func (ss *session) receiveSASL(what string) ([]byte, error) {
	if err := ss.be.SetAuthType(pgproto3.AuthTypeSASLContinue); err != nil {
		return nil, err
	}
	m, err := ss.receive()
	if err != nil {
		return nil, ss.readFailed(err, what)
	}
	r, ok := m.(*pgproto3.SASLResponse)
	if !ok {
		return nil, fatalf(codeProtocol, "expected %s, got %T", what, m)
	}
	return r.Data, nil
}

// parseSASLInitial splits a SASLInitialResponse body: the mechanism, then
// the length of the data (-1: none) and the data.
func parseSASLInitial(body []byte) (mech string, data string, err error) {
	name, rest, ok := strings.Cut(string(body), "\x00")
	if !ok || len(rest) < 4 {
		return "", "", fatalf(codeProtocol, "malformed SASLInitialResponse message")
	}
	n := int32(binary.BigEndian.Uint32([]byte(rest[:4])))
	rest = rest[4:]
	if n == -1 && rest == "" {
		return name, "", nil
	}
	if n < 0 || int64(n) != int64(len(rest)) {
		return "", "", fatalf(codeProtocol, "malformed SASLInitialResponse message: data length %d, %d bytes follow", n, len(rest))
	}
	return name, rest, nil
}

// clientFirst is what the server keeps of the client-first message.
type clientFirst struct {
	flag      string // "n", "y" or "p=<channel binding type>"
	gs2Header string // "n,,", "y,," or "p=tls-server-end-point,,"
	bare      string // client-first-message-bare, part of the AuthMessage
	nonce     string
}

func malformed(format string, args ...any) error {
	return fatalf(codeProtocol, "malformed SCRAM message: "+format, args...)
}

// parseClientFirst reads gs2-header client-first-message-bare:
// "n,,n=user,r=nonce[,ext...]". The client binds the channel (p=type),
// cannot (n), or thinks the server cannot (y).
func parseClientFirst(m string) (clientFirst, error) {
	var cf clientFirst
	var rest string
	switch {
	case strings.HasPrefix(m, "n,"), strings.HasPrefix(m, "y,"):
		cf.flag, rest = m[:1], m[2:]
	case strings.HasPrefix(m, "p="):
		name, after, ok := strings.Cut(m, ",")
		if !ok {
			return cf, malformed("no GS2 header end in %q", clip(m))
		}
		cf.flag, rest = name, after
	default:
		return cf, malformed("unexpected channel binding flag in %q", clip(m))
	}
	authzid, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return cf, malformed("no GS2 header end in %q", clip(m))
	}
	if authzid != "" {
		return cf, fatalf(codeProtocol, "client uses an authorization identity, which is not supported")
	}
	cf.gs2Header, cf.bare = m[:len(m)-len(bare)], bare
	if strings.HasPrefix(bare, "m=") {
		return cf, fatalf(codeProtocol, "client requires an unsupported SCRAM extension")
	}
	attrs := strings.Split(bare, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "n=") || !strings.HasPrefix(attrs[1], "r=") {
		return cf, malformed("client-first message %q is not n=user,r=nonce", clip(bare))
	}
	cf.nonce = attrs[1][2:]
	if !printable(cf.nonce) {
		return cf, malformed("the client nonce is empty or not printable")
	}
	return cf, nil
}

// clientFinal is the client-final message: "c=cbind,r=nonce[,ext...],p=proof".
type clientFinal struct {
	cbind        string // decoded channel binding input: the GS2 header
	nonce        string
	withoutProof string // part of the AuthMessage
	proof        []byte
}

func parseClientFinal(m string) (clientFinal, error) {
	var cf clientFinal
	i := strings.LastIndex(m, ",p=")
	if i < 0 {
		return cf, malformed("the client-final message has no proof")
	}
	cf.withoutProof = m[:i]
	proof, err := b64.DecodeString(m[i+3:])
	if err != nil || len(proof) != sha256.Size {
		return cf, malformed("the client proof is not %d bytes of base64", sha256.Size)
	}
	cf.proof = proof
	attrs := strings.Split(cf.withoutProof, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "c=") || !strings.HasPrefix(attrs[1], "r=") {
		return cf, malformed("client-final message %q is not c=binding,r=nonce,p=proof", clip(cf.withoutProof))
	}
	cbind, err := b64.DecodeString(attrs[0][2:])
	if err != nil {
		return cf, malformed("the channel binding is not base64")
	}
	cf.cbind, cf.nonce = string(cbind), attrs[1][2:]
	return cf, nil
}

// printable reports whether a nonce is non-empty printable ASCII without
// commas (RFC 5802).
func printable(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e || s[i] == ',' {
			return false
		}
	}
	return true
}

// clip shortens client text quoted in an error.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// mockVerifier is what an unknown user is challenged with: a salt and keys
// derived from the name and the server's random key, so the same name
// always gets the same salt, as a real user does.
func (s *Server) mockVerifier(user string) auth.Verifier {
	salt := auth.HMAC(s.mockKey[:], "salt\x00"+user)[:mockSaltLen]
	return auth.Verifier{Salt: salt, Iterations: auth.SCRAMIterations,
		StoredKey: auth.HMAC(s.mockKey[:], "stored\x00"+user), ServerKey: auth.HMAC(s.mockKey[:], "server\x00"+user)}
}
