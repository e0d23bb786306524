package engine

import (
	"context"
	"regexp"

	harkv1 "github.com/harkhq/hark/gen/hark/v1"
)

// workflowKeyPattern is the form of workflow keys, as Knock's: they appear in
// URL paths and store keys.
var workflowKeyPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,127}$`)

const maxDescriptionLen = 2000

// CreateWorkflow creates a workflow; it is active unless the request says
// otherwise.
func (e *Engine) CreateWorkflow(ctx context.Context, req *harkv1.CreateWorkflowRequest) (*harkv1.Workflow, error) {
	var v validation
	if !workflowKeyPattern.MatchString(req.GetKey()) {
		v.add("key", "must be 1-128 lowercase letters, digits, '-' or '_', starting with a letter or digit")
	}
	checkWorkflowText(&v, req.GetName(), req.GetDescription())
	if err := v.err(); err != nil {
		return nil, err
	}
	now := e.timestamp()
	wf := &harkv1.Workflow{
		Key:         req.GetKey(),
		Name:        req.GetName(),
		Description: req.GetDescription(),
		Active:      req.Active == nil || req.GetActive(),
		CreatedAt:   now,
		UpdatedAt:   now,
	}
	if wf.Name == "" {
		wf.Name = wf.Key
	}
	err := e.store.Update(ctx, func(tx Tx) error {
		if found, err := exists(tx.Workflow(wf.Key)); err != nil || found {
			return cmpErr(err, &AlreadyExistsError{Resource: "workflow", ID: wf.Key})
		}
		return tx.PutWorkflow(wf)
	})
	if err != nil {
		return nil, err
	}
	return wf, nil
}

// GetWorkflow returns one workflow.
func (e *Engine) GetWorkflow(ctx context.Context, key string) (*harkv1.Workflow, error) {
	var wf *harkv1.Workflow
	err := e.store.View(ctx, func(tx Tx) (err error) {
		wf, err = tx.Workflow(key)
		return err
	})
	return wf, err
}

// ListWorkflows returns a page of workflows ordered by key.
func (e *Engine) ListWorkflows(ctx context.Context, req *harkv1.ListWorkflowsRequest) (*harkv1.ListWorkflowsResponse, error) {
	p, err := readPage(req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	var wfs []*harkv1.Workflow
	err = e.store.View(ctx, func(tx Tx) (err error) {
		wfs, err = tx.Workflows(p.after, p.limit())
		return err
	})
	if err != nil {
		return nil, err
	}
	wfs, next := finishPage(wfs, p, (*harkv1.Workflow).GetKey)
	return &harkv1.ListWorkflowsResponse{Workflows: wfs, NextPageToken: next}, nil
}

// UpdateWorkflow changes the fields the request gives.
func (e *Engine) UpdateWorkflow(ctx context.Context, req *harkv1.UpdateWorkflowRequest) (*harkv1.Workflow, error) {
	var v validation
	checkWorkflowText(&v, req.GetName(), req.GetDescription())
	if err := v.err(); err != nil {
		return nil, err
	}
	var wf *harkv1.Workflow
	err := e.store.Update(ctx, func(tx Tx) (err error) {
		if wf, err = tx.Workflow(req.GetKey()); err != nil {
			return err
		}
		if req.Name != nil {
			wf.Name = req.GetName()
			if wf.Name == "" {
				wf.Name = wf.Key
			}
		}
		if req.Description != nil {
			wf.Description = req.GetDescription()
		}
		if req.Active != nil {
			wf.Active = req.GetActive()
		}
		wf.UpdatedAt = e.timestamp()
		return tx.PutWorkflow(wf)
	})
	if err != nil {
		return nil, err
	}
	return wf, nil
}

// DeleteWorkflow deletes a workflow. Triggers naming it are skipped from then
// on ("workflow not found"), as Knock does for deleted workflows.
func (e *Engine) DeleteWorkflow(ctx context.Context, key string) error {
	return e.store.Update(ctx, func(tx Tx) error {
		if _, err := tx.Workflow(key); err != nil {
			return err
		}
		return tx.DeleteWorkflow(key)
	})
}

func checkWorkflowText(v *validation, name, description string) {
	if len(name) > maxNameLen {
		v.add("name", "must be at most %d characters", maxNameLen)
	}
	if len(description) > maxDescriptionLen {
		v.add("description", "must be at most %d characters", maxDescriptionLen)
	}
}
