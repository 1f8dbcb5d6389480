package cli_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redclone/red/internal/vault"
	"github.com/redclone/red/storage"
	"github.com/redclone/red/storage/postgres/pgtest"
	"github.com/redclone/red/storage/sqlite"
)

// as is the login flags of a command for user, whose password is pw.
func (in *instance) as(user, pw string, args ...string) []string {
	return append(args, "--tenant", "praxis", "--user", user, "--password-file", in.passwordFile(pw))
}

// addUser has anna (password "pw", an admin) add user with password pw and roles.
func (in *instance) addUser(user, pw, roles string) {
	in.t.Helper()
	in.mustRun(in.as("anna", "pw", "user", "add", "--new-user", user, "--role", roles, "--new-password-file", in.passwordFile(pw))...)
}

// Users, roles and groups from the command line: the first user is a physician and admin, only
// an admin manages users, groups and tokens, and what the commands change reads back.
func TestUsersRolesGroupsAndTokens(t *testing.T) {
	in := newInstance(t, "")
	in.mustRun("init", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("pw"))
	in.addUser("ben", "bens", "assistant")
	in.addUser("cem", "cems", "pharmacist,assistant")
	in.addUser("dora", "doras", "pharmacist")
	anna := func(args ...string) []string { return in.as("anna", "pw", args...) }
	for _, c := range []struct {
		name string
		args []string
		want []string // in the output, or in the error when refused
		fail bool
	}{
		{"the list shows each user's roles", anna("user", "list"), []string{"anna  physician, admin", "ben   assistant", "cem   assistant, pharmacist", "dora  pharmacist"}, false},
		{"any user may list them", in.as("ben", "bens", "user", "list"), []string{"ben   assistant"}, false},
		{"init without admin is refused", []string{"init", "--tenant", "labor", "--user", "eva", "--password-file", in.passwordFile("x"), "--role", "physician"}, []string{"--role admin"}, true},
		{"an unknown role is refused", anna("user", "add", "--new-user", "eva", "--role", "doctor", "--new-password-file", in.passwordFile("x")), []string{`unknown role "doctor"`}, true},
		{"user add needs a role", anna("user", "add", "--new-user", "eva", "--new-password-file", in.passwordFile("x")), []string{`"role" not set`}, true},
		{"an assistant adds no user", in.as("ben", "bens", "user", "add", "--new-user", "eva", "--role", "admin", "--new-password-file", in.passwordFile("x")),
			[]string{"adding a user needs a user with the role admin; the logged-in user has: assistant"}, true},
		{"an assistant makes nobody admin", in.as("ben", "bens", "user", "role", "ben", "--role", "admin"), []string{"changing a user's roles needs a user with the role admin"}, true},
		{"an admin sets roles", anna("user", "role", "ben", "--role", "assistant", "--role", "physician"), []string{"user ben: physician, assistant"}, false},
		{"the last admin stays one", anna("user", "role", "anna", "--role", "physician"), []string{"last admin"}, true},
		{"roles of an unknown user are refused", anna("user", "role", "eva", "--role", "physician"), []string{"has no user eva"}, true},
		{"an admin creates a group", anna("group", "add", "base_user_group_admin", "--name", "Verwaltung"), []string{"created group base_user_group_admin"}, false},
		{"a group id is a resource id", anna("group", "add", "user group"), []string{"1 to 64 letters"}, true},
		{"a pharmacist creates no group", in.as("dora", "doras", "group", "add", "apotheke"), []string{"managing user groups needs a user with the role admin; the logged-in user has: pharmacist"}, true},
		{"an admin adds members", anna("group", "member", "add", "base_user_group_admin", "ben"), []string{"ben is a member of group base_user_group_admin"}, false},
		{"and more members", anna("group", "member", "add", "base_user_group_admin", "cem"), []string{"cem is a member"}, false},
		{"an unknown member is refused", anna("group", "member", "add", "base_user_group_admin", "eva"), []string{"has no user eva"}, true},
		{"a member is taken out", anna("group", "member", "remove", "base_user_group_admin", "cem"), []string{"cem is no longer a member"}, false},
		{"the group list shows the members", in.as("dora", "doras", "group", "list"), []string{"base_user_group_admin  Verwaltung  ben"}, false},
		{"a group is removed", anna("group", "remove", "base_user_group_admin"), []string{"removed group base_user_group_admin"}, false},
		{"and gone", anna("group", "list"), []string{"GROUP  NAME  MEMBERS\n"}, false},
		{"a pharmacist issues no token", in.as("dora", "doras", "token", "add", "--name", "kasse-pvs"), []string{"managing API tokens needs a user with the role admin"}, true},
		{"an admin issues a token, shown once", anna("token", "add", "--name", "kasse-pvs"), []string{"red_", "shown only now"}, false},
		{"the token list names it", anna("token", "list"), []string{"kasse-pvs"}, false},
		{"a token is removed", anna("token", "remove", "kasse-pvs"), []string{"removed token kasse-pvs"}, false},
		{"an unknown token is refused", anna("token", "remove", "kasse-pvs"), []string{"no token named kasse-pvs"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := in.run(c.args...)
			if (err != nil) != c.fail {
				t.Fatalf("err = %v\n%s", err, out)
			}
			if err != nil {
				out = err.Error()
			}
			mustContain(t, "output", out, c.want...)
		})
	}
	t.Run("the admin's changes are in the audit trail", func(t *testing.T) {
		out, err := in.run("audit", "--tenant", "praxis", "--admin", "anna", "--password-file", in.passwordFile("pw"), "--user", "anna", "--format", "json")
		if err != nil {
			t.Fatal(err, out)
		}
		var found []struct{ Action, Type, Operation string }
		if err := json.Unmarshal([]byte(out), &found); err != nil {
			t.Fatal(err, out)
		}
		var got []string
		for _, f := range found {
			if f.Type != "" {
				got = append(got, f.Action+" "+f.Type)
			} else if f.Action == "login" {
				got = append(got, f.Action+" "+f.Operation)
			}
		}
		// each command's session begins with its login; a refused change leaves the login alone
		want := []string{"login red user add", "create red:user", "login red user add", "create red:user", "login red user add", "create red:user",
			"login red user role", "update red:user", "login red user role", "login red user role",
			"login red group add", "create red:group", "login red group add",
			"login red group member add", "update red:group", "login red group member add", "update red:group", "login red group member add",
			"login red group member remove", "update red:group", "login red group remove", "delete red:group",
			"login red token add", "create red:token", "login red token list", "login red token remove", "delete red:token", "login red token remove",
			"login red audit"}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("anna's events:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}

// A user added before red knew roles (no role record) keeps every role, as every user had
// then; red user list says so, and red serve lets them do what they did.
func TestUsersFromBeforeRoles(t *testing.T) {
	in := newInstance(t, "")
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(in.dir, "red.db"))
	if err != nil {
		t.Fatal(err)
	}
	blob, err := vault.NewCredential(rand.Reader, "praxis", "anna", []byte("pw"), vault.TestKDF)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateTenant(ctx, storage.Tenant{Alias: "praxis", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutCredential(ctx, storage.Credential{Tenant: "praxis", User: "anna", Blob: blob}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	mustContain(t, "user list", in.mustRun(in.as("anna", "pw", "user", "list")...), "anna  every role (added before red knew roles")
	in.addUser("ben", "bens", "assistant") // an admin, as before
	srv := in.serve(in.as("anna", "pw", "serve")...)
	mustContain(t, "serve", srv.output.String(), "roles physician, assistant, pharmacist, admin")
	for _, path := range []string{"/praxis/TI?action=$processerp&card=HBA-16", "/praxis/Task?action=$accept&prescriptionid=160.000.000.000.000.01&accesscode=" + strings.Repeat("0", 64)} {
		if _, body := srv.do(t, "GET", path, "", nil); strings.Contains(body, "needs a user with the role") {
			t.Errorf("%s is refused:\n%s", path, body)
		}
	}
}

// refusedFor reports whether a request is refused for want of a role.
func refusedFor(t testing.TB, srv *server, path string, header ...string) (bool, string) {
	t.Helper()
	status, body := srv.do(t, "GET", path, "", nil, header...)
	return status == http.StatusForbidden && strings.Contains(body, "needs a user with the role"), body
}

// eventually polls until cond holds, at most 10 s (red serve reads roles and tokens every 2 s).
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Errorf("%s did not happen within 10 s", what)
}

// Two workstations serve one PostgreSQL database: ben, an assistant, at one; anna, requiring API
// tokens, at the other. Roles and tokens changed from the command line hold in both running
// servers within seconds, without a restart.
func TestRolesAndTokensHoldInRunningServers(t *testing.T) {
	in := newInstance(t, pgtest.URL(t))
	in.initTenant("praxis", "anna", "pw")
	in.addUser("ben", "bens", "assistant")
	in.addUser("doc", "docs", "physician")
	const processERP = "/praxis/TI?action=$processerp&card=HBA-16"
	ben := in.serve(in.as("ben", "bens", "serve", "--workstation", "empfang")...)
	mustContain(t, "serve", ben.output.String(), "logged in as ben at workstation empfang; roles assistant; groups none")
	t.Run("an assistant's $processerp is 403, naming the roles", func(t *testing.T) {
		refused, body := refusedFor(t, ben, processERP)
		if !refused {
			t.Fatal(body)
		}
		mustContain(t, "refusal", body, `<code value="forbidden"/>`, "$processerp needs a user with the role physician; the logged-in user has: assistant")
	})
	t.Run("a physician's $dispense is 403", func(t *testing.T) {
		doc := in.serve(in.as("doc", "docs", "serve", "--workstation", "sprechzimmer", "--notify-off")...)
		status, body := doc.do(t, "POST", "/praxis/Bundle?action=$dispense", fhirXML, []byte(`<Parameters xmlns="http://hl7.org/fhir"/>`))
		if status != http.StatusForbidden || !strings.Contains(body, "$dispense needs a user with the role pharmacist; the logged-in user has: physician") {
			t.Errorf("%d\n%s", status, body)
		}
	})
	t.Run("a role given at another workstation holds within seconds", func(t *testing.T) {
		in.mustRun(in.as("anna", "pw", "user", "role", "ben", "--role", "assistant,physician")...)
		eventually(t, "the role change", func() bool { refused, _ := refusedFor(t, ben, processERP); return !refused })
	})

	anna := in.serve(in.as("anna", "pw", "serve", "--require-token", "--notify-off")...)
	mustContain(t, "serve", anna.output.String(), "API requests need an API token", "the tenant has none yet")
	const search = "/praxis/Patient?page=1"
	t.Run("without a token a request is 401", func(t *testing.T) {
		status, body := anna.do(t, "GET", search, "", nil)
		if status != http.StatusUnauthorized || !strings.Contains(body, `<code value="login"/>`) {
			t.Errorf("%d\n%s", status, body)
		}
	})
	token := strings.TrimSpace(in.mustRun(in.as("anna", "pw", "token", "add", "--name", "kasse-pvs")...))
	token = regexp.MustCompile(`red_[A-Za-z0-9_-]{43}`).FindString(token)
	t.Run("a token issued meanwhile is accepted within seconds, also in RED's raw style", func(t *testing.T) {
		eventually(t, "the token's acceptance", func() bool {
			status, _ := anna.do(t, "GET", search, "", nil, "Authorization", "Bearer "+token)
			return status == http.StatusOK
		})
		if status, body := anna.do(t, "GET", search, "", nil, "Authorization", token); status != http.StatusOK {
			t.Errorf("raw token: %d\n%s", status, body)
		}
	})
	t.Run("the signing page keeps working without a token", func(t *testing.T) {
		if status, body := anna.do(t, "GET", "/praxis/ui/", "", nil); status != http.StatusOK || !strings.Contains(body, "<html") {
			t.Errorf("page: %d\n%s", status, body)
		}
		out, err := in.run("erp", "sign", "--tenant", "praxis", "--port", portOf(t, anna.base))
		if err != nil || !strings.Contains(out, "nothing to sign") {
			t.Errorf("red erp sign: %v\n%s", err, out)
		}
	})
	t.Run("a token removed meanwhile is refused within seconds", func(t *testing.T) {
		in.mustRun(in.as("anna", "pw", "token", "remove", "kasse-pvs")...)
		eventually(t, "the token's refusal", func() bool {
			status, _ := anna.do(t, "GET", search, "", nil, "Authorization", "Bearer "+token)
			return status == http.StatusUnauthorized
		})
	})
	t.Run("refused clients are failed logins in the audit trail", func(t *testing.T) {
		if err := anna.stop(); err != nil {
			t.Fatal(err)
		}
		out, err := in.run("audit", "--tenant", "praxis", "--admin", "anna", "--password-file", in.passwordFile("pw"), "--user", "anna")
		if err != nil {
			t.Fatal(err, out)
		}
		if n := len(regexp.MustCompile(`login +API token +unauthorized \(401\)`).FindAllString(out, -1)); n < 2 {
			t.Errorf("%d refused clients in anna's events, want the request without a token and those with the removed one:\n%s", n, out)
		}
	})
}

// groupSecrets are what the store must never hold in plaintext: group ids and names, roles,
// token names and the tokens.
var groupSecrets = []string{"gruppe-kardiologie", "Herzsprechstunde", "base_user_group_admin", "Verwaltungsteam",
	"physician", "pharmacist", "assistant", "kasse-pvs"}

// setUpDirectory creates users with roles, groups with members and a token; it returns the token.
func setUpDirectory(t *testing.T, in *instance) string {
	in.initTenant("praxis", "anna", "pw")
	in.addUser("ben", "bens", "assistant")
	for _, args := range [][]string{
		{"group", "add", "gruppe-kardiologie", "--name", "Herzsprechstunde"},
		{"group", "add", "base_user_group_admin", "--name", "Verwaltungsteam"},
		{"group", "member", "add", "gruppe-kardiologie", "ben"},
		{"group", "member", "add", "base_user_group_admin", "anna"},
	} {
		in.mustRun(in.as("anna", "pw", args...)...)
	}
	token := strings.TrimSpace(in.mustRun(in.as("anna", "pw", "token", "add", "--name", "kasse-pvs")...))
	// the records read back: what follows proves they are sealed, not missing
	mustContain(t, "group list", in.mustRun(in.as("ben", "bens", "group", "list")...), "gruppe-kardiologie     Herzsprechstunde  ben")
	return token
}

func directoryLeaks(token string) func(raw []byte) []string {
	return func(raw []byte) []string {
		var found []string
		lower := bytes.ToLower(raw)
		for _, s := range append(groupSecrets, token, token[len("red_"):]) {
			if bytes.Contains(raw, []byte(s)) || bytes.Contains(lower, []byte(hex.EncodeToString([]byte(s)))) {
				found = append(found, s)
			}
		}
		return found
	}
}

func TestDirectoryConfidentialitySQLite(t *testing.T) {
	in := newInstance(t, "")
	leaks := directoryLeaks(setUpDirectory(t, in))
	files, _ := filepath.Glob(filepath.Join(in.dir, "red.db*"))
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if found := leaks(raw); len(found) > 0 {
			t.Errorf("%s holds in plaintext: %v", filepath.Base(f), found)
		}
	}
}

func TestDirectoryConfidentialityPostgres(t *testing.T) {
	url := pgtest.URL(t)
	in := newInstance(t, url)
	postgresLeaks(t, url, directoryLeaks(setUpDirectory(t, in)))
}

// The demo practice's user may try every action, the pharmacy's too.
func TestDemoUserHoldsEveryRole(t *testing.T) {
	in := newInstance(t, "")
	srv := in.serve("demo")
	mustContain(t, "demo", srv.output.String(), "logged in as demo at workstation", "roles physician, assistant, pharmacist, admin")
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}
	out := in.mustRun("user", "list", "--tenant", "demo", "--user", "demo", "--password-file", filepath.Join(in.dir, "demo-password"))
	mustContain(t, "user list", out, "demo  physician, assistant, pharmacist, admin")
}
