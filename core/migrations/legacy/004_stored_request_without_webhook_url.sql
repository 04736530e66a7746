-- The stored request used to be the API's body, whose webhook_url carried the job's webhook
-- token in the clear. The digest (webhook_token_hash) is all the bot needs: the URL is derived
-- again at each submission. Rows keep their old form otherwise (GenerationRequest.from_stored
-- reads it as version 0).
UPDATE jobs SET request_json = json_remove(request_json, '$.webhook_url')
    WHERE json_type(request_json, '$.webhook_url') IS NOT NULL;
-- Run by the store after this migration commits: rebuilds the file and empties the WAL, so that
-- no old copy of a token is left in free pages or WAL frames.
VACUUM;
