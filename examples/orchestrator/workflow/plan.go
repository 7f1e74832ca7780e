package workflow

import (
	"context"
	"errors"
	"fmt"

	"github.com/bulwark-go/bulwark/idempotency"
	"github.com/bulwark-go/bulwark/rollback"
)

// step is one tool call of the agent's plan.
type step struct {
	name      string // the tool, e.g. "create-page"
	executor  string // the service it calls
	reasoning string // the agent's reasoning for this call

	// do carries the step out, sending key to the service as its
	// Idempotency-Key. out holds the values of the earlier steps, by step
	// name.
	do func(ctx context.Context, svc *services, key string, out map[string]string) (string, error)

	// undoName and undo undo the step, given its value (pipeline.Undo);
	// undo is a method expression of services, such as
	// (*services).deletePage.
	undoName string
	undo     func(svc *services, ctx context.Context, v string) error
}

// agentPlan returns the agent's plan.
func agentPlan() []step {
	return []step{
		{
			name:      "create-page",
			executor:  "notion",
			reasoning: "The team asked for one place to collect the sprint 7 retro notes; a Notion page with the retro template fits.",
			do: func(ctx context.Context, svc *services, key string, _ map[string]string) (string, error) {
				// Uploads take no idempotency key: each attempt uploads
				// anew, and a failed attempt's upload is undone before
				// the retry. Once the page exists, it holds the upload.
				file := svc.upload(ctx, "retro-template.png")
				if err := rollback.OnRollback(ctx, "delete upload "+file, func(ctx context.Context) error {
					return svc.deleteUpload(ctx, file)
				}); err != nil {
					return "", err
				}
				return svc.createPage(ctx, key, "Sprint 7 retro", file)
			},
			undoName: "delete page",
			undo:     (*services).deletePage,
		},
		{
			name:      "create-card",
			executor:  "trello",
			reasoning: "The flaky deploys came up in every standup; a card on the sprint board gives the follow-up an owner.",
			do: func(ctx context.Context, svc *services, key string, _ map[string]string) (string, error) {
				return svc.createCard(ctx, key, "Fix flaky deploys")
			},
			undoName: "delete card",
			undo:     (*services).deleteCard,
		},
		{
			name:      "post-message",
			executor:  "slack",
			reasoning: "Tell #sprint-7 where the retro notes and the follow-up card are, so nobody has to ask.",
			do: func(ctx context.Context, svc *services, key string, out map[string]string) (string, error) {
				text := fmt.Sprintf("Retro: %s · follow-up: %s", out["create-page"], out["create-card"])
				return svc.postMessage(ctx, key, text)
			},
			undoName: "delete message",
			undo:     (*services).deleteMessage,
		},
	}
}

// key returns the idempotency key the pipeline derives for st with
// pipeline.IdempotencyKeyParts(st.name, st.reasoning):
// idempotency.Key(executor, name, reasoning).
func (st *step) key() (string, error) {
	return idempotency.Key(st.executor, st.name, st.reasoning)
}

// remoteKey returns the key a keyed call runs under, to send to the
// remote service: idempotency.KeyFrom(ctx).
func remoteKey(ctx context.Context) (string, error) {
	key, _, ok := idempotency.KeyFrom(ctx)
	if !ok {
		return "", errors.New("no idempotency key in the call's context")
	}
	return key, nil
}
