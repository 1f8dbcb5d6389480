package profile

// Accessors for code that works from the tables rather than validating with them (fhir/profile/
// sample builds instances of the profiles): they resolve the tables' references as validation does.

// ProfileIn is the profile a reference made in a definition of package pkg names (canonical with
// or without |version; pkg "" for definitions read outside packages): the version validation
// resolves it to within the package's scope (see Tables.Scope and PickVersion). nil when the
// tables do not hold it there.
func (v *Validator) ProfileIn(canonical, pkg string) *StructureDef {
	sc := v.scope(pkg)
	if c := v.profile(canonical, &sc); c != nil {
		return c.sd
	}
	return nil
}

// ValueSetIn is the value set a binding of a definition of package pkg names, as ProfileIn
// resolves profiles: the one whose codes validation checks (when it is Expanded). nil when the
// tables do not hold it there.
func (v *Validator) ValueSetIn(canonical, pkg string) *ValueSet {
	if ci := v.valueSet(canonical, v.scope(pkg)); ci != nil {
		return ci.vs
	}
	return nil
}
