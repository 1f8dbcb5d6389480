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
// made in package from (nil outside a package) means (see profile.PickVersion): the package's
// own dependencies are the context.
func pick[T versioned](cands []T, version string, from *pkgInfo) (T, bool) {
	return profile.PickVersion(cands, version, T.ver, func(c T) bool { return from != nil && from.closure[c.src().pkg] })
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
				if e.Binding != nil && e.Binding.ValueSet != "" {
					e.Binding.ValueSet = pinned(g.vss, e.Binding.ValueSet, from)
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
