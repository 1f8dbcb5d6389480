package main

import (
	"fmt"
	"sort"

	"github.com/redclone/red/fhir/profile"
)

// versioned is a definition kept by canonical URL and version.
type versioned interface {
	ver() string
	src() origin
}

// pick chooses among the versions read of a canonical (in reading order) the one a reference
// made in package from (nil outside a package) means (see profile.PickVersion): the package and
// its dependencies are the context, an unversioned reference resolves only within them.
func pick[T versioned](cands []T, version string, from *pkgInfo) (T, bool) {
	if from == nil {
		return profile.PickVersion(cands, version, T.ver, nil)
	}
	return profile.PickVersion(cands, version, T.ver, func(c T) bool { return from.closure[c.src().pkg] })
}

// pinned is a reference as the tables write it: when more than one version of the canonical was
// read, with the version it resolves to from package from; otherwise as written.
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
// the package that states them: a profile inherits them as resolved. A reference a package makes
// to a canonical read only outside its dependencies is not followed: such a type profile is left
// out (with a warning), such a value set marked Outside (a KBV key table the package does not
// ship: an older one of another package would reject codes added since).
func (g *gen) pinReferences() {
	for _, rs := range g.sds {
		for _, r := range rs {
			from := r.from.pkg
			for _, e := range r.diff {
				for i := range e.Types {
					t := &e.Types[i]
					t.Profiles = g.pinProfiles(t.Profiles, from, r)
					t.TargetProfile = g.pinProfiles(t.TargetProfile, from, r)
				}
				if b := e.Binding; b != nil && b.ValueSet != "" {
					if resolvable(g.vss, b.ValueSet, from) {
						b.ValueSet = pinned(g.vss, b.ValueSet, from)
					} else {
						b.Outside = true
					}
				}
			}
		}
	}
}

// pinProfiles pins the profile references refs made in r (from its package from).
func (g *gen) pinProfiles(refs []string, from *pkgInfo, r *rawSD) []string {
	out := refs[:0]
	for _, p := range refs {
		if !resolvable(g.sds, p, from) {
			g.warnings = append(g.warnings, fmt.Sprintf("%s|%s (package %s) names %s, read only outside the package's dependencies: left out", r.sd.URL, r.sd.Version, from, p))
			continue
		}
		out = append(out, pinned(g.sds, p, from))
	}
	return out
}

// resolvable reports whether a reference made in package from resolves, or cannot be followed
// anyway (nothing of that canonical was read); false when only versions outside from's
// dependencies were read.
func resolvable[T versioned](all map[string][]T, ref string, from *pkgInfo) bool {
	url, version := profile.SplitCanonical(ref)
	if len(all[url]) == 0 {
		return true
	}
	_, ok := pick(all[url], version, from)
	return ok || version != ""
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
