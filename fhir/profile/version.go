package profile

import (
	"strconv"
	"strings"
)

// PickVersion chooses, among the versions of one canonical (cands, first the one an unversioned
// reference means outside a context), the one a reference naming version means. As the HL7
// validator resolves a versioned canonical, a version matches itself and, failing that, the
// versions of its major.minor: 1.3 (as the KBV writes meta.profile) and 1.3.0 match 1.3.3, the AWS
// profiles' base KBV_PR_Base_Patient|1.1.0 is KBV Basis 1.1.3. Of those that match it is the exact
// one, else one in context, else the highest. An unversioned reference made in a context (a
// package and its dependencies; inContext not nil) means the first version in context and nothing
// else: a package does not see definitions it does not depend on. ok is false when none matches.
func PickVersion[T any](cands []T, version string, ver func(T) string, inContext func(T) bool) (best T, ok bool) {
	bestScore, bestVer := -1, ""
	for _, c := range cands {
		v := ver(c)
		if version != "" && v != version && majorMinor(v) != majorMinor(version) {
			continue
		}
		in := inContext != nil && inContext(c)
		if version == "" && inContext != nil && !in {
			continue
		}
		score := 0
		if version != "" && v == version {
			score += 2
		}
		if in {
			score++
		}
		if score > bestScore || (score == bestScore && version != "" && newerVersion(v, bestVer)) {
			best, bestScore, bestVer, ok = c, score, v, true
		}
	}
	return best, ok
}

// majorMinor is the first two dot-separated parts of a version (1.3.3 → 1.3).
func majorMinor(v string) string {
	if i := strings.IndexByte(v, '.'); i >= 0 {
		if j := strings.IndexByte(v[i+1:], '.'); j >= 0 {
			return v[:i+1+j]
		}
	}
	return v
}

// newerVersion reports whether version a is above b, comparing dot-separated numbers.
func newerVersion(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		x, errx := strconv.Atoi(as[i])
		y, erry := strconv.Atoi(bs[i])
		switch {
		case errx != nil || erry != nil:
			if as[i] != bs[i] {
				return as[i] > bs[i]
			}
		case x != y:
			return x > y
		}
	}
	return len(as) > len(bs)
}

// SplitCanonical splits a canonical reference url|version (version "" when there is none).
func SplitCanonical(ref string) (url, version string) {
	url, version, _ = strings.Cut(ref, "|")
	return url, version
}
