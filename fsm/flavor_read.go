package fsm

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Flavor reads. They take a Reader, so they work on State (API reads) and
// inside Apply. Not-found errors carry Nova's message ("Flavor X could not
// be found."), so the API can return them as they are.

// GetFlavor returns the flavor with id (Nova's flavorid).
func GetFlavor(r Reader, id string) (*Flavor, Meta, error) {
	if !FlavorIDOK(id) {
		return nil, Meta{}, flavorNotFound(id)
	}
	f, meta, err := Get[Flavor](r, TableFlavor, id)
	if err != nil {
		if e, ok := AsError(err); ok && e.Kind == KindNotFound {
			return nil, Meta{}, flavorNotFound(id)
		}
		return nil, Meta{}, err
	}
	return f, meta, nil
}

// FlavorByName returns the flavor named name (case-sensitive).
func FlavorByName(r Reader, name string) (*Flavor, error) {
	id, err := identLookup(r, TableFlavor, flavorIdxName, name)
	if err != nil {
		return nil, err
	}
	if id == "" {
		return nil, Errorf(KindNotFound, "Flavor with name %s could not be found.", name)
	}
	f, _, err := GetFlavor(r, id)
	return f, err
}

// ListFlavors returns every flavor (public, private and disabled), sorted by
// id. Callers filter for visibility with FlavorAccessible.
func ListFlavors(r Reader) ([]Flavor, error) {
	out, err := identScanAll[Flavor](r, TableFlavor)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Flavor) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// FlavorAccessible reports whether projectID may use f: f is public, or
// projectID is in its access list. ("" is no project: public flavors only.)
// Admins may use every flavor; that is the caller's check.
func FlavorAccessible(r Reader, f *Flavor, projectID string) (bool, error) {
	if f.IsPublic {
		return true, nil
	}
	if !flavorProjectOK(projectID) {
		return false, nil
	}
	_, ok, err := r.Get(TableFlavorAccess, flavorAccessKey(f.ID, projectID))
	return ok, err
}

// FlavorAccess returns the project ids in the access list of flavorID,
// sorted (empty for a missing flavor).
func FlavorAccess(r Reader, flavorID string) ([]string, error) {
	if !FlavorIDOK(flavorID) {
		return nil, nil
	}
	prefix := flavorID + "/"
	out := []string{}
	err := r.Scan(TableFlavorAccess, prefix, func(rec Record) bool {
		out = append(out, strings.TrimPrefix(rec.Key, prefix))
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("fsm: scan the access list of flavor %s: %w", flavorID, err)
	}
	slices.Sort(out)
	return out, nil
}

// DefaultFlavorsHandled reports whether CreateDefaultFlavors has been
// applied (whether or not it created anything).
func DefaultFlavorsHandled(r Reader) (bool, error) {
	_, ok, err := r.Get(TableFlavorDefaults, flavorDefaultsKey)
	return ok, err
}
