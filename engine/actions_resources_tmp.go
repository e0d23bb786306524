package engine

import (
	"errors"

	"google.golang.org/protobuf/types/known/structpb"
)

var errResourcesPending = errors.New("resources pending")

func (e *Engine) setObjectAction(tx Tx, env string, p objectParams) error { return errResourcesPending }
func (e *Engine) deleteObjectAction(tx Tx, env string, ref objectRef) error {
	return errResourcesPending
}
func (e *Engine) setTenantAction(tx Tx, env, id string, p *structpb.Struct) error {
	return errResourcesPending
}
func (e *Engine) deleteTenantAction(tx Tx, env, id string) error { return errResourcesPending }
func (e *Engine) subscribeAction(tx Tx, env string, p subscribeParams) error {
	return errResourcesPending
}
func (e *Engine) unsubscribeAction(tx Tx, env string, p subscribeParams) error {
	return errResourcesPending
}
func (e *Engine) addMembersAction(tx Tx, env string, p audienceParams) error {
	return errResourcesPending
}
func (e *Engine) removeMembersAction(tx Tx, env string, p audienceParams) error {
	return errResourcesPending
}
func (e *Engine) deleteUserTx(tx Tx, env, id string) error { return tx.DeleteUser(env, id) }
