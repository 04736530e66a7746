-- When the requester was told how a failed or cancelled job ended. A job that failed while the
-- bot could not reach Discord (or just before a crash) is told again at the next start.
ALTER TABLE jobs ADD COLUMN user_notified_at REAL;
CREATE INDEX jobs_unnotified ON jobs (state)
    WHERE state IN ('failed', 'cancelled') AND user_notified_at IS NULL;
