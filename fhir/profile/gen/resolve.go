package main

import (
	"sort"

	"github.com/redclone/red/fhir/profile"
)

// versioned is a definition kept by canonical URL and version.
type versioned interface {
	ver() string
	src() origin
}

// pick chooses among the versions read of a canonical (in reading order) the one a reference
// made in package from means (see profile.PickVersion). The package and its dependencies are the
// context; outside packages (from nil) the definitions read outside packages are: an unversioned
// reference resolves only within its context, so that adding a package changes nothing that
// others check (AWS does not meet de.basisprofil.r4 1.5.2; the e-prescription, whose packages
// do not ship the KBV key tables KBV_VS_SFHIR_*, does not meet AWS's older ones).
func pick[T versioned](cands []T, version string, from *pkgInfo) (T, bool) {
	return profile.PickVersion(cands, version, T.ver, func(c T) bool { return inScope(from, c.src().pkg) })
}

// inScope reports whether a definition of package pkg is in the context of package from.
func inScope(from, pkg *pkgInfo) bool {
	if from == nil {
		return pkg == nil
	}
	return from.closure[pkg]
}

// pinned is a reference as the tables write it: when more than one version of the canonical was
// read, with the version it resolves to from package from; otherwise as written (the validator
// resolves it in the same context, that of the profile's package).
func pinned[T versioned](all map[string][]T, ref string, from *pkgInfo) string {
	url, version := profile.SplitCanonical(ref)
	cands := all[url]
	if len(cands) < 2 {
		return ref
	}
	if c, ok := pick(cands, version, from); ok {
		return url + "|" + c.ver()
	}
	return ref
}

// sd is the profile a reference resolves to from package from (nil when none read matches).
func (g *gen) sd(ref string, from *pkgInfo) *rawSD {
	url, version := profile.SplitCanonical(ref)
	r, _ := pick(g.sds[url], version, from)
	return r
}

// key names a profile in the tables' references (Chain): its URL, with the version when more than
// one version of it was read.
func (g *gen) key(r *rawSD) string {
	if len(g.sds[r.sd.URL]) > 1 {
		return r.sd.URL + "|" + r.sd.Version
	}
	return r.sd.URL
}

// pinReferences writes the version into the references of every differential (type profiles,
// target profiles, bound value sets) that could mean more than one version read, resolved from
// the package that states them: a profile inherits them as resolved.
func (g *gen) pinReferences() {
	for _, rs := range g.sds {
		for _, r := range rs {
			from := r.from.pkg
			for _, e := range r.diff {
				for i := range e.Types {
					t := &e.Types[i]
					for j, p := range t.Profiles {
						t.Profiles[j] = pinned(g.sds, p, from)
					}
					for j, p := range t.TargetProfile {
						t.TargetProfile[j] = pinned(g.sds, p, from)
					}
				}
				if b := e.Binding; b != nil && b.ValueSet != "" {
					b.ValueSet = pinned(g.vss, b.ValueSet, from)
				}
			}
		}
	}
}

// packages lists the packages read with their closures, for the tables.
func (g *gen) packages() []profile.Package {
	var out []profile.Package
	for _, p := range g.pkgs {
		pk := profile.Package{ID: p.String()}
		for q := range p.closure {
			pk.Closure = append(pk.Closure, q.String())
		}
		sort.Strings(pk.Closure)
		out = append(out, pk)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
