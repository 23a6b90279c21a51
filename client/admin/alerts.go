package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/switchboardhq/switchboard"
)

const (
	alertChannelsPath   = "/api/alerts/channels"
	alertRulesPath      = "/api/alerts/rules"
	alertDeliveriesPath = "/api/alerts/deliveries"
)

// AlertChannel is an alert channel as the server shows it: its config and
// the names of its secrets, never their values.
type AlertChannel struct {
	switchboard.AlertChannel

	// JSON is the server's answer as received.
	JSON json.RawMessage `json:"-"`
}

// AlertChannelList is the answer of ListAlertChannels.
type AlertChannelList struct {
	Channels []switchboard.AlertChannel `json:"channels"`
	JSON     json.RawMessage            `json:"-"`
}

// AlertRule is an alert rule.
type AlertRule struct {
	switchboard.AlertRule
	JSON json.RawMessage `json:"-"`
}

// AlertRuleList is the answer of ListAlertRules.
type AlertRuleList struct {
	Rules []switchboard.AlertRule `json:"rules"`
	JSON  json.RawMessage         `json:"-"`
}

// AlertAttemptPage is a page of delivery attempts, newest first; Next is
// the path of the following page when this one is full.
type AlertAttemptPage struct {
	Attempts []switchboard.DeliveryAttempt `json:"attempts"`
	Next     string                        `json:"next,omitempty"`
	JSON     json.RawMessage               `json:"-"`
}

// AlertTestResult is the outcome of a test send: the delivery as recorded
// and its attempt (Attempt.Outcome is sent or failed).
type AlertTestResult struct {
	Delivery switchboard.Delivery        `json:"delivery"`
	Attempt  switchboard.DeliveryAttempt `json:"attempt"`
	JSON     json.RawMessage             `json:"-"`
}

// ListAlertChannels lists the alert channels (role admin).
func (c *Client) ListAlertChannels(ctx context.Context) (AlertChannelList, error) {
	l, raw, err := call[AlertChannelList](ctx, c, http.MethodGet, alertChannelsPath, nil)
	l.JSON = raw
	return l, err
}

// GetAlertChannel reads one channel (role admin).
func (c *Client) GetAlertChannel(ctx context.Context, name string) (AlertChannel, error) {
	return c.alertChannel(ctx, http.MethodGet, alertChannelsPath+"/"+url.PathEscape(name), nil)
}

// CreateAlertChannel creates a channel (role superadmin); in is a
// switchboard.ChannelInput or its JSON.
func (c *Client) CreateAlertChannel(ctx context.Context, in any) (AlertChannel, error) {
	return c.alertChannel(ctx, http.MethodPost, alertChannelsPath, in)
}

// UpdateAlertChannel replaces a channel's config; secrets left out keep
// their values (role superadmin).
func (c *Client) UpdateAlertChannel(ctx context.Context, name string, in any) (AlertChannel, error) {
	return c.alertChannel(ctx, http.MethodPut, alertChannelsPath+"/"+url.PathEscape(name), in)
}

// DeleteAlertChannel removes a channel no rule uses (role superadmin).
func (c *Client) DeleteAlertChannel(ctx context.Context, name string) error {
	return c.api.Do(ctx, http.MethodDelete, alertChannelsPath+"/"+url.PathEscape(name), nil, nil)
}

// TestAlertChannel sends a test notification to a channel and returns its
// outcome (role admin). A receiver that refuses it is not an error: see
// Attempt.Outcome.
func (c *Client) TestAlertChannel(ctx context.Context, name string) (AlertTestResult, error) {
	r, raw, err := call[AlertTestResult](ctx, c, http.MethodPost, alertChannelsPath+"/"+url.PathEscape(name)+"/test", nil)
	r.JSON = raw
	return r, err
}

func (c *Client) alertChannel(ctx context.Context, method, path string, in any) (AlertChannel, error) {
	ch, raw, err := call[AlertChannel](ctx, c, method, path, in)
	ch.JSON = raw
	return ch, err
}

// ListAlertRules lists the alert rules (role admin).
func (c *Client) ListAlertRules(ctx context.Context) (AlertRuleList, error) {
	l, raw, err := call[AlertRuleList](ctx, c, http.MethodGet, alertRulesPath, nil)
	l.JSON = raw
	return l, err
}

// GetAlertRule reads one rule (role admin).
func (c *Client) GetAlertRule(ctx context.Context, name string) (AlertRule, error) {
	return c.alertRule(ctx, http.MethodGet, alertRulesPath+"/"+url.PathEscape(name), nil)
}

// CreateAlertRule creates a rule (role admin); in is a
// switchboard.RuleInput or its JSON.
func (c *Client) CreateAlertRule(ctx context.Context, in any) (AlertRule, error) {
	return c.alertRule(ctx, http.MethodPost, alertRulesPath, in)
}

// UpdateAlertRule replaces a rule (role admin).
func (c *Client) UpdateAlertRule(ctx context.Context, name string, in any) (AlertRule, error) {
	return c.alertRule(ctx, http.MethodPut, alertRulesPath+"/"+url.PathEscape(name), in)
}

// DeleteAlertRule removes a rule (role admin).
func (c *Client) DeleteAlertRule(ctx context.Context, name string) error {
	return c.api.Do(ctx, http.MethodDelete, alertRulesPath+"/"+url.PathEscape(name), nil, nil)
}

func (c *Client) alertRule(ctx context.Context, method, path string, in any) (AlertRule, error) {
	r, raw, err := call[AlertRule](ctx, c, method, path, in)
	r.JSON = raw
	return r, err
}

// ListAlertDeliveries lists delivery attempts, newest first (role admin):
// of channel when it is set, at most limit (0: the server's default), with
// ids below before (0: from the newest).
func (c *Client) ListAlertDeliveries(ctx context.Context, channel string, limit int, before int64) (AlertAttemptPage, error) {
	q := url.Values{}
	if channel != "" {
		q.Set("channel", channel)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if before > 0 {
		q.Set("before", strconv.FormatInt(before, 10))
	}
	path := alertDeliveriesPath
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	p, raw, err := call[AlertAttemptPage](ctx, c, http.MethodGet, path, nil)
	p.JSON = raw
	return p, err
}
