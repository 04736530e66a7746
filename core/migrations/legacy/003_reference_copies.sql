-- Where lasting copies of a job's reference files live ({"ref:1": [channel, message, position]}):
-- files attached to a slash command are ephemeral on Discord, so the bot re-posts them once.
ALTER TABLE jobs ADD COLUMN reference_copies_json TEXT NOT NULL DEFAULT '{}';
