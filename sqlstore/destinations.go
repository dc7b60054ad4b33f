package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/datapusher/datapusher"
)

const destinationColumns = `id, account_id, url, http_method, headers, signing_secret,
	previous_signing_secret, previous_signing_secret_expires_at, enabled, disabled_reason,
	created_at, updated_at, created_by, updated_by`

// DestinationOrderings maps the accepted ordering names of destination lists
// to columns.
var DestinationOrderings = map[string]string{
	"url": "url", "http_method": "http_method", "created_at": "created_at", "updated_at": "updated_at",
}

// destinationColumnsOf returns destinationColumns qualified with a table
// alias, for joins.
func destinationColumnsOf(alias string) string {
	columns := strings.Split(destinationColumns, ",")
	for i, column := range columns {
		columns[i] = alias + "." + strings.TrimSpace(column)
	}
	return strings.Join(columns, ", ")
}

func scanDestination(row interface{ Scan(...any) error }) (*datapusher.Destination, error) {
	var t destinationScan
	if err := row.Scan(t.targets()...); err != nil {
		return nil, err
	}
	return t.result()
}

// destinationScan holds the columns of destinationColumns while a row is
// scanned.
type destinationScan struct {
	destination                           datapusher.Destination
	headers                               string
	previousExpires, createdAt, updatedAt dbTime
	createdBy, updatedBy                  sql.NullString
}

func (t *destinationScan) targets() []any {
	d := &t.destination
	return []any{&d.ID, &d.AccountID, &d.URL, &d.HTTPMethod, &t.headers, &d.SigningSecret,
		&d.PreviousSigningSecret, &t.previousExpires, &d.Enabled, &d.DisabledReason,
		&t.createdAt, &t.updatedAt, &t.createdBy, &t.updatedBy}
}

func (t *destinationScan) result() (*datapusher.Destination, error) {
	d := t.destination
	if err := json.Unmarshal([]byte(t.headers), &d.Headers); err != nil {
		return nil, fmt.Errorf("decode headers of destination %s: %w", d.ID, err)
	}
	if d.Headers == nil {
		d.Headers = map[string]string{}
	}
	d.PreviousSigningSecretExpiresAt = t.previousExpires.ptr()
	d.CreatedAt, d.UpdatedAt = t.createdAt.Time, t.updatedAt.Time
	d.CreatedBy, d.UpdatedBy = nullString(t.createdBy), nullString(t.updatedBy)
	return &d, nil
}

func encodeHeaders(headers map[string]string) (string, error) {
	if headers == nil {
		headers = map[string]string{}
	}
	b, err := json.Marshal(headers)
	if err != nil {
		return "", fmt.Errorf("encode headers: %w", err)
	}
	return string(b), nil
}

// CreateDestination inserts d, filling its id and timestamps.
func (s *Store) CreateDestination(ctx context.Context, d *datapusher.Destination, actorID string) error {
	headers, err := encodeHeaders(d.Headers)
	if err != nil {
		return err
	}
	d.ID = newID()
	d.CreatedAt = s.Now()
	d.UpdatedAt = d.CreatedAt
	d.CreatedBy, d.UpdatedBy = &actorID, &actorID
	_, err = s.db.ExecContext(ctx, `INSERT INTO destinations (id, account_id, url, http_method, headers,
		signing_secret, enabled, disabled_reason, created_at, updated_at, created_by, updated_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		d.ID, d.AccountID, d.URL, d.HTTPMethod, headers, d.SigningSecret, d.Enabled, d.DisabledReason,
		s.timeArg(d.CreatedAt), s.timeArg(d.UpdatedAt), actorID, actorID)
	if err != nil {
		return mapError(fmt.Errorf("insert destination: %w", err))
	}
	return nil
}

// Destination returns the destination with that id.
func (s *Store) Destination(ctx context.Context, id string) (*datapusher.Destination, error) {
	if !validID(id) {
		return nil, notFound("destination")
	}
	row := s.db.QueryRowContext(ctx, `SELECT `+destinationColumns+` FROM destinations WHERE id = $1`, id)
	d, err := scanDestination(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("destination")
	} else if err != nil {
		return nil, mapError(fmt.Errorf("select destination: %w", err))
	}
	return d, nil
}

// Destinations returns one page of the destinations that match f, and how
// many match in all.
func (s *Store) Destinations(ctx context.Context, f datapusher.DestinationFilter) ([]*datapusher.Destination, int, error) {
	var w where
	w.visibleTo("account_id", f.VisibleTo)
	if f.AccountID != nil {
		if !validID(*f.AccountID) {
			return []*datapusher.Destination{}, 0, nil
		}
		w.add("account_id = ?", *f.AccountID)
	}
	if f.HTTPMethod != nil {
		w.add("http_method = ?", *f.HTTPMethod)
	}
	if f.Search != nil {
		w.add(`lower(url) LIKE ? ESCAPE '\'`, likePattern(*f.Search))
	}
	order, err := orderBy(f.Ordering, "created_at", DestinationOrderings, "id")
	if err != nil {
		return nil, 0, datapusher.FieldError("ordering", err.Error())
	}

	var count int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM destinations`+w.String(), w.args...).Scan(&count); err != nil {
		return nil, 0, mapError(fmt.Errorf("count destinations: %w", err))
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+destinationColumns+` FROM destinations`+w.String()+order+
		limitOffset(f.Limit, f.Offset), w.args...)
	if err != nil {
		return nil, 0, mapError(fmt.Errorf("select destinations: %w", err))
	}
	defer rows.Close()
	destinations := []*datapusher.Destination{}
	for rows.Next() {
		d, err := scanDestination(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("scan destination: %w", err)
		}
		destinations = append(destinations, d)
	}
	return destinations, count, mapError(rows.Err())
}

// AccountDestinations returns every destination of an account, oldest first.
func (s *Store) AccountDestinations(ctx context.Context, accountID string) ([]*datapusher.Destination, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+destinationColumns+` FROM destinations
		WHERE account_id = $1 ORDER BY created_at, id`, accountID)
	if err != nil {
		return nil, mapError(fmt.Errorf("select destinations: %w", err))
	}
	defer rows.Close()
	destinations := []*datapusher.Destination{}
	for rows.Next() {
		d, err := scanDestination(rows)
		if err != nil {
			return nil, fmt.Errorf("scan destination: %w", err)
		}
		destinations = append(destinations, d)
	}
	return destinations, mapError(rows.Err())
}

// UpdateDestination writes the editable fields of d.
func (s *Store) UpdateDestination(ctx context.Context, d *datapusher.Destination, actorID string) error {
	headers, err := encodeHeaders(d.Headers)
	if err != nil {
		return err
	}
	d.UpdatedAt = s.Now()
	d.UpdatedBy = &actorID
	res, err := s.db.ExecContext(ctx, `UPDATE destinations SET url = $1, http_method = $2, headers = $3,
		enabled = $4, disabled_reason = $5, updated_at = $6, updated_by = $7 WHERE id = $8`,
		d.URL, d.HTTPMethod, headers, d.Enabled, d.DisabledReason, s.timeArg(d.UpdatedAt), actorID, d.ID)
	if err != nil {
		return mapError(fmt.Errorf("update destination: %w", err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("destination")
	}
	return nil
}

// RotateSigningSecret makes secret the destination's signing secret. The
// previous secret keeps signing deliveries for grace.
func (s *Store) RotateSigningSecret(ctx context.Context, id, secret string, grace time.Duration, actorID string) error {
	if !validID(id) {
		return notFound("destination")
	}
	now := s.Now()
	res, err := s.db.ExecContext(ctx, `UPDATE destinations SET previous_signing_secret = signing_secret,
		previous_signing_secret_expires_at = $1, signing_secret = $2, updated_at = $3, updated_by = $4
		WHERE id = $5`, s.timeArg(now.Add(grace)), secret, s.timeArg(now), actorID, id)
	if err != nil {
		return mapError(fmt.Errorf("rotate signing secret: %w", err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("destination")
	}
	return nil
}

// DeleteDestination deletes a destination and its delivery logs.
func (s *Store) DeleteDestination(ctx context.Context, id string) error {
	if !validID(id) {
		return notFound("destination")
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM destinations WHERE id = $1`, id)
		if err != nil {
			return mapError(fmt.Errorf("delete destination: %w", err))
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound("destination")
		}
		return nil
	})
}
