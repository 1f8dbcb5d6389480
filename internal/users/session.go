package users

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/access"
)

// DefaultTTL is how long a Session uses what it read: a change another red makes to the user's
// roles, the groups or the tokens holds in a running red serve after at most this long.
const DefaultTTL = 2 * time.Second

// Session is the user a red serve is logged in as, as each request acts: their principal (roles,
// groups, the workstation) and, with RequireToken, the API client the request's token names. It
// reads the directory again once what it read is older than TTL, so that red user role, red
// group … and red token … of another red, on this workstation or another one sharing the
// database, hold here without a restart. It is safe for concurrent use.
type Session struct {
	Dir         *Directory
	User        string
	Workstation string
	// RequireToken refuses API requests without a valid token (red serve --require-token).
	RequireToken bool
	TTL          time.Duration    // DefaultTTL when 0
	Now          func() time.Time // nil: time.Now

	mu     sync.Mutex
	read   time.Time // when p and tokens were read; zero: never
	p      access.Principal
	tokens []Token
}

func (s *Session) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

// Load reads the user's principal now (at login: red serve stops when it cannot).
func (s *Session) Load(ctx context.Context) (access.Principal, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reload(ctx); err != nil {
		return access.Principal{}, err
	}
	return s.principal(), nil
}

// reload reads principal and tokens; s.mu must be held. A user without roles (their role record
// went missing) acts for nobody.
func (s *Session) reload(ctx context.Context) error {
	at := s.now()
	p, err := s.Dir.Principal(ctx, s.User, s.Workstation)
	if err != nil {
		return err
	}
	if len(p.Roles) == 0 {
		return fhir.Fail(fhir.CodeForbidden, "", "the logged-in user %s has no roles: an admin gives them some with red user role", s.User)
	}
	ts, err := s.Dir.Tokens(ctx)
	if err != nil {
		return err
	}
	s.p, s.tokens, s.read = p, ts, at
	return nil
}

// principal is a copy of the principal read; s.mu must be held.
func (s *Session) principal() access.Principal {
	p := s.p
	p.Roles, p.Groups = slices.Clone(p.Roles), slices.Clone(p.Groups)
	return p
}

// current is the principal and the tokens, read again when older than TTL.
func (s *Session) current(ctx context.Context) (access.Principal, []Token, error) {
	ttl := s.TTL
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.read.IsZero() || s.now().Sub(s.read) >= ttl {
		if err := s.reload(ctx); err != nil {
			return access.Principal{}, nil, err
		}
	}
	return s.principal(), s.tokens, nil
}

// Page is the principal of a request through red's own page, which keeps a session of its own
// (package ui) and needs no API token.
func (s *Session) Page(ctx context.Context) (access.Principal, error) {
	p, _, err := s.current(ctx)
	return p, err
}

// Principal is the principal of an API request whose Authorization header is authorization.
// With RequireToken the header must carry a valid token — "Bearer <token>", or the token alone
// as RED's clients send it — whose name becomes the principal's Client; otherwise the request is
// refused (401). Without RequireToken the header is not looked at.
func (s *Session) Principal(ctx context.Context, authorization string) (access.Principal, error) {
	p, tokens, err := s.current(ctx)
	if err != nil || !s.RequireToken {
		return p, err
	}
	presented := bearer(authorization)
	if presented == "" {
		return access.Principal{}, fhir.Fail(fhir.CodeUnauthorized, "", "this server requires an API token: send Authorization: Bearer <token> (an admin issues one with red token add --name CLIENT)")
	}
	name, err := s.Dir.client(presented, tokens)
	if err != nil {
		return access.Principal{}, err
	}
	if name == "" {
		return access.Principal{}, fhir.Fail(fhir.CodeUnauthorized, "", "the API token is not valid for this tenant: unknown, mistyped or removed")
	}
	p.Client = name
	return p, nil
}

// bearer is the token an Authorization header value carries: "Bearer <token>" (the scheme in
// any case), or the value itself; "" for none.
func bearer(authorization string) string {
	v := strings.TrimSpace(authorization)
	if scheme, token, _ := strings.Cut(v, " "); strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(token)
	}
	return v
}
