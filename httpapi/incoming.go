package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/datapusher/datapusher"
	"github.com/datapusher/datapusher/ingest"
)

// Messages of the incoming data endpoint. Senders written for the original
// service compare them literally.
const (
	messageReceived           = "Data Received"
	messageInvalidData        = "Invalid Data"
	messageUnauthenticated    = "Unauthenticated"
	messageTooLarge           = "Request body too large"
	messageServiceUnavailable = "Service Unavailable"
	messageTooManyRequests    = "Too Many Requests"
	messageInternalError      = "Internal Server Error"
)

// incomingResponse is the body of every response of the incoming data endpoint.
type incomingResponse struct {
	Success   bool   `json:"success"`
	Message   string `json:"message"`
	EventID   string `json:"event_id,omitempty"`
	Duplicate bool   `json:"duplicate,omitempty"`
}

// handleIncomingData accepts an event from a sender that authenticates with
// the account's app secret token in CL-X-TOKEN and names the event in
// CL-X-EVENT-ID. The event is stored and its deliveries queued before the
// 202 response, and nothing is delivered inside the request.
func (s *Server) handleIncomingData(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeIncoming(w, http.StatusMethodNotAllowed, incomingResponse{Message: messageInvalidData})
		return
	}

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		writeIncoming(w, http.StatusRequestEntityTooLarge, incomingResponse{Message: messageTooLarge})
		return
	} else if err != nil {
		writeIncoming(w, http.StatusBadRequest, incomingResponse{Message: messageInvalidData})
		return
	}

	submission, err := s.events.SubmitWithToken(r.Context(), r.Header.Get("CL-X-TOKEN"),
		r.Header.Get("CL-X-EVENT-ID"), body, RequestIDFromContext(r.Context()))
	if err != nil {
		s.writeIncomingError(w, r, err)
		return
	}
	s.cfg.Metrics.EventAccepted(submission.Duplicate)
	setLogAccount(r.Context(), submission.AccountID)
	status := http.StatusAccepted
	if submission.Duplicate {
		status = http.StatusOK
	}
	writeIncoming(w, status, incomingResponse{
		Success: true, Message: messageReceived, EventID: submission.EventID, Duplicate: submission.Duplicate,
	})
}

func (s *Server) writeIncomingError(w http.ResponseWriter, r *http.Request, err error) {
	var limited *ingest.RateLimitedError
	if errors.As(err, &limited) {
		s.cfg.Metrics.RateLimited("incoming")
		limited.Result.SetHeaders(w.Header())
		writeIncoming(w, http.StatusTooManyRequests, incomingResponse{Message: messageTooManyRequests})
		return
	}
	switch datapusher.ErrorCode(err) {
	case datapusher.EUNAUTHORIZED:
		writeIncoming(w, http.StatusUnauthorized, incomingResponse{Message: messageUnauthenticated})
	case datapusher.EINVALID:
		writeIncoming(w, http.StatusBadRequest, incomingResponse{Message: messageInvalidData})
	case datapusher.EUNAVAILABLE:
		s.logger.Warn("incoming data rejected: database unavailable",
			"request_id", RequestIDFromContext(r.Context()), "error", err)
		w.Header().Set("Retry-After", "5")
		writeIncoming(w, http.StatusServiceUnavailable, incomingResponse{Message: messageServiceUnavailable})
	default:
		s.logger.Error("incoming data", "request_id", RequestIDFromContext(r.Context()), "error", err)
		writeIncoming(w, http.StatusInternalServerError, incomingResponse{Message: messageInternalError})
	}
}

func writeIncoming(w http.ResponseWriter, status int, body incomingResponse) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
