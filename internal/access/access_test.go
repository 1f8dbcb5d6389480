package access_test

import (
	"context"
	"testing"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/access"
)

func TestRequire(t *testing.T) {
	doctorAndAdmin := access.With(context.Background(), access.Principal{User: "anna", Roles: []access.Role{access.Physician, access.Admin}})
	mfa := access.With(context.Background(), access.Principal{User: "ben", Roles: []access.Role{access.Assistant}})
	nobody := access.With(context.Background(), access.Principal{User: "cem"})
	for _, c := range []struct {
		name  string
		ctx   context.Context
		roles []access.Role
		want  string // "": let through
	}{
		{"lets through a user with the role", doctorAndAdmin, []access.Role{access.Physician}, ""},
		{"lets through a user with one of the roles", doctorAndAdmin, []access.Role{access.Pharmacist, access.Admin}, ""},
		{"refuses a user without the role", mfa, []access.Role{access.Physician},
			"$processerp needs a user with the role physician; the logged-in user has: assistant"},
		{"names every role that would do", mfa, []access.Role{access.Physician, access.Pharmacist, access.Admin},
			"$processerp needs a user with the role physician, pharmacist or admin; the logged-in user has: assistant"},
		{"refuses a user without roles", nobody, []access.Role{access.Physician},
			"$processerp needs a user with the role physician; the logged-in user has: none"},
		{"refuses when no user acts", context.Background(), []access.Role{access.Physician},
			"$processerp needs a logged-in user with the role physician"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := access.Require(c.ctx, "$processerp", c.roles...)
			if c.want == "" {
				if err != nil {
					t.Errorf("refused: %v", err)
				}
				return
			}
			is, status := fhir.Explain(err)
			if status != 403 || len(is) != 1 || is[0].Code != fhir.CodeForbidden || is[0].Diagnostics != c.want {
				t.Errorf("%d %+v, want 403 forbidden %q", status, is, c.want)
			}
		})
	}
}

func TestParseRole(t *testing.T) {
	for _, c := range []struct {
		in   string
		want access.Role
		ok   bool
	}{
		{"physician", access.Physician, true},
		{" Pharmacist ", access.Pharmacist, true},
		{"ADMIN", access.Admin, true},
		{"assistant", access.Assistant, true},
		{"doctor", "", false},
		{"", "", false},
	} {
		got, err := access.ParseRole(c.in)
		if got != c.want || (err == nil) != c.ok {
			t.Errorf("ParseRole(%q) = %q, %v", c.in, got, err)
		}
	}
}
