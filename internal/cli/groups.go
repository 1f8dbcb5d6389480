package cli

import (
	"context"
	"slices"

	"github.com/redclone/red/internal/users"
)

// userGroups tells records which Organizations a Provenance names are the tenant's user groups:
// those red group add made (package users).
type userGroups struct{ dir *users.Directory }

func (g userGroups) IsGroup(ctx context.Context, id string) (bool, error) {
	groups, err := g.dir.Groups(ctx)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(groups, func(gr users.Group) bool { return gr.ID == id }), nil
}
