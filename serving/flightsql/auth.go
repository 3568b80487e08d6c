package flightsql

import (
	"context"
	"encoding/base64"
	"errors"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/gridlake/gridlake/auth"
)

// Authenticator checks what a Flight caller presents; *auth.Directory is one.
type Authenticator interface {
	Token(ctx context.Context, token string) (auth.Principal, error)
	Password(ctx context.Context, name, secret string) (auth.Principal, error)
}

// Sessions issues the bearer token the basic-auth handshake answers with,
// and checks it on later calls; *auth.Sessions is one.
type Sessions interface {
	Issue(p auth.Principal) (string, time.Time, error)
	Check(value string) (auth.Principal, error)
}

const (
	authHeader = "authorization"
	// maxAuthHeader bounds the header before it is decoded.
	maxAuthHeader = 1024
	// Failed credentials from one address within a minute, as over HTTP.
	maxFailures   = 20
	failureWindow = time.Minute
)

// guard authenticates every call: "authorization: Bearer <token>" (an API
// token, or the session the handshake issued) or "Basic <user:password>";
// the Handshake call trades Basic credentials for a Bearer session, as
// Flight clients' basic-token authentication expects. SQL needs the
// analyst role (DESIGN §9).
type guard struct {
	dir      Authenticator
	sessions Sessions
	fails    *auth.FailureBudget
}

func (g *guard) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	p, err := g.authenticate(ctx)
	if err != nil {
		return nil, err
	}
	return handler(auth.WithPrincipal(ctx, p), req)
}

func (g *guard) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	p, err := g.authenticate(ss.Context())
	if err != nil {
		return err
	}
	if strings.HasSuffix(info.FullMethod, "/Handshake") && g.sessions != nil {
		tok, _, err := g.sessions.Issue(p)
		if err != nil {
			return status.Errorf(codes.Internal, "issue a session: %v", err)
		}
		if err := ss.SetHeader(metadata.Pairs(authHeader, "Bearer "+tok)); err != nil {
			return err
		}
	}
	return handler(srv, &principalStream{ServerStream: ss, ctx: auth.WithPrincipal(ss.Context(), p)})
}

type principalStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *principalStream) Context() context.Context { return s.ctx }

const howTo = "send the gRPC header authorization: Bearer <token> (create one with gridlake auth add-token NAME --role analyst), or sign in with user and password (Basic)"

// authenticate returns the caller's principal, or the gRPC error to answer.
func (g *guard) authenticate(ctx context.Context) (auth.Principal, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get(authHeader)
	if len(vals) == 0 || vals[0] == "" {
		return auth.Principal{}, status.Error(codes.Unauthenticated, "authentication required: "+howTo)
	}
	addr := peerHost(ctx)
	if g.fails.Blocked(addr) {
		return auth.Principal{}, status.Error(codes.ResourceExhausted, "too many failed credentials from this address: wait a minute")
	}
	p, err := g.check(ctx, vals[0])
	switch {
	case errors.Is(err, auth.ErrBusy):
		return p, status.Error(codes.Unavailable, err.Error())
	case err != nil:
		g.fails.Add(addr)
		return p, status.Error(codes.Unauthenticated, err.Error()+": "+howTo)
	case !p.May(auth.Analyst):
		return p, status.Errorf(codes.PermissionDenied, "Flight SQL needs role %s; %s has role %s", auth.Analyst, p, p.Role)
	}
	return p, nil
}

func (g *guard) check(ctx context.Context, header string) (auth.Principal, error) {
	if len(header) > maxAuthHeader {
		return auth.Principal{}, auth.ErrUnauthenticated
	}
	scheme, cred, _ := strings.Cut(strings.TrimSpace(header), " ")
	cred = strings.TrimSpace(cred)
	switch {
	case strings.EqualFold(scheme, "Bearer") && strings.HasPrefix(cred, auth.TokenPrefix):
		return g.dir.Token(ctx, cred)
	case strings.EqualFold(scheme, "Bearer") && g.sessions != nil:
		return g.sessions.Check(cred)
	case strings.EqualFold(scheme, "Basic"):
		raw, err := base64.StdEncoding.DecodeString(cred)
		if err != nil {
			// Flight's Go client sends it unpadded.
			if raw, err = base64.RawStdEncoding.DecodeString(cred); err != nil {
				return auth.Principal{}, errors.New("the Basic credentials are not base64 of user:password")
			}
		}
		name, secret, ok := strings.Cut(string(raw), ":")
		if !ok {
			return auth.Principal{}, errors.New("the Basic credentials are not base64 of user:password")
		}
		return g.dir.Password(ctx, name, secret)
	}
	return auth.Principal{}, errors.New("the authorization header is neither Bearer <token> nor Basic <credentials>")
}

// peerHost is the caller's host, the unit of the failure budget.
func peerHost(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(p.Addr.String())
	if err != nil {
		return p.Addr.String()
	}
	return host
}
