package fsm

import (
	"maps"
)

// Appliers of the flavor commands: read, validate everything, then write.
// Messages of refusals are Nova's where Nova has one, since clients see them.

func flavorNotFound(id string) *Error {
	return Errorf(KindNotFound, "Flavor %s could not be found.", id)
}

// flavorGet reads a flavor for an applier, with Nova's not-found message.
func flavorGet(r Reader, id string) (*Flavor, error) {
	if !FlavorIDOK(id) {
		return nil, flavorNotFound(id)
	}
	f, _, err := Get[Flavor](r, TableFlavor, id)
	if err != nil {
		if e, ok := AsError(err); ok && e.Kind == KindNotFound {
			return nil, flavorNotFound(id)
		}
		return nil, err
	}
	return f, nil
}

// flavorCheckFree refuses f if its id or name is taken (Nova checks the id
// first).
func flavorCheckFree(r Reader, f *Flavor) error {
	if _, ok, err := r.Get(TableFlavor, f.ID); err != nil {
		return err
	} else if ok {
		return Errorf(KindConflict, "Flavor with ID %s already exists.", f.ID)
	}
	if pk, err := identLookup(r, TableFlavor, flavorIdxName, f.Name); err != nil {
		return err
	} else if pk != "" {
		return Errorf(KindConflict, "Flavor with name %s already exists.", f.Name)
	}
	return nil
}

// flavorPut writes a new flavor and its name index.
func flavorPut(tx *Txn, f *Flavor) error {
	if err := tx.PutIndex(TableFlavor, flavorIdxName, f.ID, f.Name); err != nil {
		return err
	}
	return tx.Put(TableFlavor, f.ID, f)
}

func applyCreateFlavor(tx *Txn, c *CreateFlavor) (any, error) {
	f := c.Flavor
	if len(f.ExtraSpecs) == 0 {
		f.ExtraSpecs = nil
	}
	if err := f.validate(); err != nil {
		return nil, err
	}
	if err := flavorCheckFree(tx, &f); err != nil {
		return nil, err
	}
	if err := flavorPut(tx, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

func applyDeleteFlavor(tx *Txn, c *DeleteFlavor) (any, error) {
	f, err := flavorGet(tx, c.ID)
	if err != nil {
		return nil, err
	}
	projects, err := FlavorAccess(tx, f.ID)
	if err != nil {
		return nil, err
	}
	for _, p := range projects {
		if err := tx.Delete(TableFlavorAccess, flavorAccessKey(f.ID, p)); err != nil {
			return nil, err
		}
	}
	if err := tx.DeleteIndex(TableFlavor, flavorIdxName, f.ID, f.Name); err != nil {
		return nil, err
	}
	return nil, tx.Delete(TableFlavor, f.ID)
}

func applyUpdateFlavorDescription(tx *Txn, c *UpdateFlavorDescription) (any, error) {
	old, err := flavorGet(tx, c.ID)
	if err != nil {
		return nil, err
	}
	if err := flavorCheckText("flavor description", c.Description, FlavorMaxDescriptionLen); err != nil {
		return nil, err
	}
	if old.Description == c.Description {
		return old, nil // nothing to change
	}
	f := *old
	f.Description = c.Description
	if err := tx.Put(TableFlavor, f.ID, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

func applySetFlavorExtraSpecs(tx *Txn, c *SetFlavorExtraSpecs) (any, error) {
	old, err := flavorGet(tx, c.ID)
	if err != nil {
		return nil, err
	}
	if err := flavorCheckSpecs(c.Specs); err != nil {
		return nil, err
	}
	specs := maps.Clone(old.ExtraSpecs)
	if specs == nil {
		specs = map[string]string{}
	}
	changed := false
	for k, v := range c.Specs {
		if cur, ok := specs[k]; !ok || cur != v {
			specs[k], changed = v, true
		}
	}
	if !changed {
		return old, nil
	}
	f := *old
	f.ExtraSpecs = specs
	if err := tx.Put(TableFlavor, f.ID, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

func applyDeleteFlavorExtraSpec(tx *Txn, c *DeleteFlavorExtraSpec) (any, error) {
	old, err := flavorGet(tx, c.ID)
	if err != nil {
		return nil, err
	}
	if _, ok := old.ExtraSpecs[c.Key]; !ok {
		return nil, Errorf(KindNotFound, "Flavor %s has no extra specs with key %s.", c.ID, c.Key)
	}
	f := *old
	f.ExtraSpecs = maps.Clone(old.ExtraSpecs)
	delete(f.ExtraSpecs, c.Key)
	if len(f.ExtraSpecs) == 0 {
		f.ExtraSpecs = nil
	}
	if err := tx.Put(TableFlavor, f.ID, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

func flavorAccessKey(flavorID, projectID string) string { return flavorID + "/" + projectID }

func applyAddFlavorAccess(tx *Txn, c *AddFlavorAccess) (any, error) {
	// Nova's order: the project, the flavor, public, the entry.
	if !flavorProjectOK(c.ProjectID) || !identIDOK(c.ProjectID) {
		return nil, Errorf(KindInvalid, "Project ID %s is not a valid project.", c.ProjectID)
	}
	if ok, err := identExists(tx, TableProject, c.ProjectID); err != nil {
		return nil, err
	} else if !ok {
		return nil, Errorf(KindInvalid, "Project ID %s is not a valid project.", c.ProjectID)
	}
	f, err := flavorGet(tx, c.FlavorID)
	if err != nil {
		return nil, err
	}
	if c.RefusePublic && f.IsPublic {
		return nil, Errorf(KindConflict, "Can not add access to a public flavor.")
	}
	projects, err := FlavorAccess(tx, f.ID)
	if err != nil {
		return nil, err
	}
	for _, p := range projects {
		if p == c.ProjectID {
			return nil, Errorf(KindConflict, "Flavor access already exists for flavor %s and project %s combination.", f.ID, c.ProjectID)
		}
	}
	entry := FlavorAccessEntry{FlavorID: f.ID, ProjectID: c.ProjectID}
	if err := tx.Put(TableFlavorAccess, flavorAccessKey(f.ID, c.ProjectID), &entry); err != nil {
		return nil, err
	}
	return flavorSortedInsert(projects, c.ProjectID), nil
}

func applyRemoveFlavorAccess(tx *Txn, c *RemoveFlavorAccess) (any, error) {
	f, err := flavorGet(tx, c.FlavorID)
	if err != nil {
		return nil, err
	}
	projects, err := FlavorAccess(tx, f.ID)
	if err != nil {
		return nil, err
	}
	rest := make([]string, 0, len(projects))
	found := false
	for _, p := range projects {
		if p == c.ProjectID {
			found = true
			continue
		}
		rest = append(rest, p)
	}
	if !found {
		return nil, Errorf(KindNotFound, "Flavor access not found for %s / %s combination.", f.ID, c.ProjectID)
	}
	if err := tx.Delete(TableFlavorAccess, flavorAccessKey(f.ID, c.ProjectID)); err != nil {
		return nil, err
	}
	return rest, nil
}

// flavorSortedInsert returns the sorted list ps with p added.
func flavorSortedInsert(ps []string, p string) []string {
	out := make([]string, 0, len(ps)+1)
	added := false
	for _, q := range ps {
		if !added && p < q {
			out, added = append(out, p), true
		}
		out = append(out, q)
	}
	if !added {
		out = append(out, p)
	}
	return out
}

func applyCreateDefaultFlavors(tx *Txn, c *CreateDefaultFlavors) (any, error) {
	if c.Now < 0 {
		return nil, Errorf(KindInvalid, "now must not be negative, not %d", c.Now)
	}
	if done, err := DefaultFlavorsHandled(tx); err != nil {
		return nil, err
	} else if done {
		return uint64(0), nil
	}
	exists := false
	if err := tx.Scan(TableFlavor, "", func(Record) bool { exists = true; return false }); err != nil {
		return nil, err
	}
	var create []Flavor
	if !exists {
		create = DefaultFlavors(c.Now)
	}
	for i := range create {
		if err := create[i].validate(); err != nil {
			return nil, err
		}
	}
	for i := range create {
		if err := flavorPut(tx, &create[i]); err != nil {
			return nil, err
		}
	}
	if err := tx.Put(TableFlavorDefaults, flavorDefaultsKey, &flavorDefaults{Created: len(create), At: c.Now}); err != nil {
		return nil, err
	}
	return uint64(len(create)), nil
}
