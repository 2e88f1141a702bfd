DROP FUNCTION IF EXISTS signoff_load_command(text, uuid, text);
