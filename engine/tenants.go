package engine

import (
	"context"

	"google.golang.org/protobuf/types/known/structpb"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// TenantPatch is what a set of a tenant changes: a name or settings that
// are set replace the stored ones; properties merge key by key (or
// replace them all when the set does not merge).
type TenantPatch struct {
	Name       *string
	Properties *structpb.Struct
	Settings   *structpb.Struct
}

// TenantPatchFromTraits maps Segment group traits, or the fields of a
// Knock inline tenant, to a tenant patch: a string `name` is the tenant's
// name, an object `settings` its settings (Knock's inline tenants carry
// them so), every other key a property (as identify maps user traits). A
// `name` or `settings` of another type stays a property of that name
// rather than being dropped.
func TenantPatchFromTraits(traits *structpb.Struct) TenantPatch {
	p := TenantPatch{Properties: &structpb.Struct{Fields: map[string]*structpb.Value{}}}
	for k, v := range traits.GetFields() {
		switch kind := v.GetKind().(type) {
		case *structpb.Value_StringValue:
			if k == "name" {
				p.Name = &kind.StringValue
				continue
			}
		case *structpb.Value_StructValue:
			if k == "settings" {
				p.Settings = kind.StructValue
				continue
			}
		}
		p.Properties.Fields[k] = v
	}
	return p
}

// setTenant creates or updates a tenant inside tx. With merge, fields the
// patch leaves out keep their value and properties merge key by key
// (SetTenant, Knock's tenants_set); without, the tenant becomes exactly
// the patch (its created_at stays). Bad input is a *ValidationError and
// nothing is written. The environment is not checked: callers have.
func (e *Engine) setTenant(tx Tx, env, id string, p TenantPatch, merge bool) (*harkv1.Tenant, error) {
	var v validation
	checkResourceID(&v, "id", id)
	if err := v.err(); err != nil {
		return nil, err
	}
	t, err := tx.Tenant(env, id)
	switch {
	case isNotFound(err):
		t = &harkv1.Tenant{Id: id, Environment: env, CreatedAt: e.timestamp()}
	case err != nil:
		return nil, err
	}
	if !merge {
		t.Name, t.Settings = "", nil
	}
	if p.Name != nil {
		t.Name = *p.Name
	}
	if p.Settings != nil {
		t.Settings = p.Settings
	}
	t.Properties = mergeProperties(t.Properties, p.Properties, merge)
	if len(t.Name) > maxNameLen {
		v.add("name", "must be at most %d characters", maxNameLen)
	}
	e.checkProperties(&v, "properties", t.Properties)
	e.checkProperties(&v, "settings", t.Settings)
	if err := v.err(); err != nil {
		return nil, err
	}
	t.UpdatedAt = e.timestamp()
	return t, tx.PutTenant(t)
}

// deleteTenant deletes a tenant inside tx; a missing one is a
// *NotFoundError. Audience memberships for the tenant stay: in Knock a
// tenant is a reference a membership carries, not its owner.
func (e *Engine) deleteTenant(tx Tx, env, id string) error {
	if _, err := tx.Tenant(env, id); err != nil {
		return err
	}
	return tx.DeleteTenant(env, id)
}

// SetTenant creates or updates a tenant of an environment.
func (e *Engine) SetTenant(ctx context.Context, req *harkv1.SetTenantRequest) (*harkv1.Tenant, error) {
	var v validation
	checkResourceID(&v, "id", req.GetId())
	if err := v.err(); err != nil {
		return nil, err
	}
	var t *harkv1.Tenant
	err := e.store.Update(ctx, func(tx Tx) (err error) {
		if _, err := tx.Environment(req.GetEnvironment()); err != nil {
			return err
		}
		p := TenantPatch{Name: req.Name, Properties: req.GetProperties(), Settings: req.GetSettings()}
		t, err = e.setTenant(tx, req.GetEnvironment(), req.GetId(), p, true)
		return err
	})
	return t, err
}

// GetTenant returns one tenant.
func (e *Engine) GetTenant(ctx context.Context, env, id string) (*harkv1.Tenant, error) {
	var t *harkv1.Tenant
	err := e.store.View(ctx, func(tx Tx) (err error) {
		if _, err := tx.Environment(env); err != nil {
			return err
		}
		t, err = tx.Tenant(env, id)
		return err
	})
	return t, err
}

// ListTenants returns a page of an environment's tenants ordered by id.
func (e *Engine) ListTenants(ctx context.Context, req *harkv1.ListTenantsRequest) (*harkv1.ListTenantsResponse, error) {
	p, err := readPage(req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	resp := &harkv1.ListTenantsResponse{}
	err = e.store.View(ctx, func(tx Tx) error {
		if _, err := tx.Environment(req.GetEnvironment()); err != nil {
			return err
		}
		tenants, err := tx.Tenants(req.GetEnvironment(), p.after, p.limit())
		if err != nil {
			return err
		}
		resp.Tenants, resp.NextPageToken = finishPage(tenants, p, (*harkv1.Tenant).GetId)
		return nil
	})
	return resp, err
}

// DeleteTenant deletes a tenant.
func (e *Engine) DeleteTenant(ctx context.Context, env, id string) error {
	return e.store.Update(ctx, func(tx Tx) error {
		if _, err := tx.Environment(env); err != nil {
			return err
		}
		return e.deleteTenant(tx, env, id)
	})
}
