package records

import (
	"context"
	"errors"
	"strings"

	"github.com/redclone/red/fhir"
	"github.com/redclone/red/internal/access"
	"github.com/redclone/red/internal/vault"
	"github.com/redclone/red/storage"
)

// User groups. RED's user groups are Organizations (its Organization search lists them, with
// ids such as base_user_group_admin), and the Provenances of a posted bundle put its data into
// the context of a user group. The KBV's Provenance profile (KBV_PR_AW_Provenienz 1.2.0) has
// one agent per Provenance: who (the user: a PractitionerRole or an employee's Practitioner)
// acting on behalf of (onBehalfOf) a PractitionerRole or an Organization (Betriebsstaette). So
// red reads a Provenance of a posted bundle as putting its targets into user group G when its
// agent acts on behalf of Organization/G and G is one of the tenant's user groups:
//
//	<Provenance>
//	  <target><reference value="DocumentReference/D1"/></target>   (Type/id, fullUrl or urn:uuid of an entry)
//	  …
//	  <agent>
//	    <who><reference value="Practitioner/A1"/></who>
//	    <onBehalfOf><reference value="Organization/G"/></onBehalfOf>
//	  </agent>
//	</Provenance>
//
// The targets, and the Provenance itself, are then written into G: only G's members and
// admins see them (the vault's barrier enforces it). The rules:
//
//   - a target must be an entry of the same bundle (its new version goes into the group); a
//     resource belongs to one group, so two Provenances may not put it into different ones;
//   - who posts must be a member of G or an admin: nobody hides data from themselves by mistake;
//   - Organization/G need not be stored: a user group is an Organization in RED's sense;
//   - a resource written again without such a Provenance stays in its group (a later
//     Provenance naming another group moves it, by a member of both or an admin); data never
//     put into a group is the whole tenant's, as before.

// Groups says which Organization ids are the tenant's user groups.
type Groups interface {
	IsGroup(ctx context.Context, id string) (bool, error)
}

// groupAgent is one Provenance's agent acting on behalf of a user group.
type groupAgent struct {
	prov  *entry
	group string
	site  refSite
}

// assignGroups reads the bundle's Provenances: it records the user group each entry is written
// into (p.groups) and the references naming a user group (p.groupSites, which need name no
// stored Organization), and returns the issues that refuse the assignment.
func (s *Service) assignGroups(ctx context.Context, p *plan) (fhir.Issues, error) {
	var agents []groupAgent
	for _, e := range p.entries {
		if e.typ != "Provenance" || e.res == nil {
			continue
		}
		for _, site := range e.references() {
			behalf := site.el.Parent()
			if behalf.Tag != "onBehalfOf" || behalf.Parent().Tag != "agent" || behalf.Parent().Parent() != e.res {
				continue
			}
			typ, id := p.target(site.el.SelectAttrValue("value", ""))
			if typ != "Organization" {
				continue
			}
			ok, err := s.isGroup(ctx, id)
			if err != nil {
				return nil, err
			}
			if ok {
				agents = append(agents, groupAgent{prov: e, group: id, site: site})
				p.groupSites[site.el] = true
			}
		}
	}
	var issues fhir.Issues
	who, acting := access.From(ctx)
	for _, a := range agents {
		if acting && !who.SeesAll() && !who.InGroup(a.group) {
			issues = append(issues, errorAt(fhir.CodeForbidden, a.site.path(),
				"names user group %s, of which you are no member: a user group's data is written by its members and by admins", a.group))
			continue
		}
		issues = append(issues, p.assign(a.prov, a.group, a.site)...)
		for _, site := range references(a.prov.res, a.prov.at) {
			if t := site.el.Parent(); t.Tag != "target" || t.Parent() != a.prov.res {
				continue
			}
			typ, id := p.target(site.el.SelectAttrValue("value", ""))
			e := p.inBundle[typ+"/"+id]
			switch {
			case e == nil:
				issues = append(issues, errorAt(fhir.CodeNotSupported, site.path(),
					"puts a resource into user group %s that this bundle does not write: send it in the bundle to change its user group", a.group))
			case e.method != "DELETE": // a target this bundle deletes is refused by resolve
				issues = append(issues, p.assign(e, a.group, site)...)
			}
		}
	}
	return issues, nil
}

// assign puts e into group, as site says; a resource put into two groups is refused.
func (p *plan) assign(e *entry, group string, site refSite) fhir.Issues {
	if g, ok := p.groups[e]; ok && g != group {
		return fhir.Issues{errorAt(fhir.CodeInvalid, site.path(), "puts %s into user group %s, which another Provenance of this bundle puts into %s: a resource belongs to one user group", e.key(), group, g)}
	}
	p.groups[e] = group
	return nil
}

// target is the type and id a reference names: an entry of the bundle (by fullUrl, urn:uuid or
// Type/id) or Type/id; "" for others.
func (p *plan) target(ref string) (typ, id string) {
	key, ok := p.alias[ref]
	if !ok {
		t, i, local := localRef(ref)
		if !local {
			return "", ""
		}
		key = t + "/" + i
	}
	typ, id, _ = strings.Cut(key, "/")
	return typ, id
}

// isGroup says whether Organization id is one of the tenant's user groups: any when the service
// knows no groups (RED's user groups are its Organizations).
func (s *Service) isGroup(ctx context.Context, id string) (bool, error) {
	if s.Groups == nil {
		return fhir.ValidID(id), nil
	}
	return s.Groups.IsGroup(ctx, id)
}

// keepGroups keeps the user group of the resources the bundle writes again without a
// Provenance naming one: such a version stays in its group. A deletion carries the group of
// what it deletes (vault.Write.Group), for the notifications.
func (s *Service) keepGroups(ctx context.Context, p *plan) error {
	for _, e := range p.entries {
		if _, assigned := p.groups[e]; assigned {
			continue
		}
		if h := p.heads[e.key()]; h.Version == 0 || h.Deleted {
			continue
		}
		cur, err := s.Store.Current(ctx, e.typ, e.id)
		if err != nil {
			return err
		}
		if cur.Group != "" {
			p.groups[e] = cur.Group
		}
	}
	return nil
}

// hiddenWrites turns the barrier's refusal of writes over what the writer may not see into an
// issue at each such entry (at says where each resource is in the bundle); other errors pass.
func hiddenWrites(err error, at map[vault.Ref]string) error {
	var he *vault.HiddenError
	if !errors.As(err, &he) {
		return err
	}
	var issues fhir.Issues
	for _, r := range he.Refs {
		issues = append(issues, errorAt(fhir.CodeForbidden, at[r], "%s/%s cannot be written: the id is taken by data you may not see; choose another id", r.Type, r.ID))
	}
	return fhir.Reject(issues)
}

// GroupOf is the user group of the resource's current version, "" for the whole tenant's, or
// for one that is not stored (or that who acts may not see).
func (s *Service) GroupOf(ctx context.Context, typ, id string) (string, error) {
	r, err := s.Store.Current(ctx, typ, id)
	if errors.Is(err, storage.ErrNotFound) {
		return "", nil
	}
	return r.Group, err
}
