DROP FUNCTION IF EXISTS signoff_save_command(text, uuid, text, jsonb, int4, text, timestamptz, int8,
    timestamptz, int4[], text[], text[], text[], timestamptz[], text[], text[], text[], uuid[],
    int8[], text[], jsonb[], timestamptz[]);
