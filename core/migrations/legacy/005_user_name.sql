-- The requester's display name when the job was accepted: reports can name members without the
-- privileged Members intent (the bot has no member cache), and after they have left.
ALTER TABLE jobs ADD COLUMN user_name TEXT;
