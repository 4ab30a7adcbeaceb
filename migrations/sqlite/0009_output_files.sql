-- Output is kept in files beside the database (one per command); the size of a sealed one, for
-- retention. NULL: no sealed file (the output, if any, is in command_output).
ALTER TABLE commands ADD COLUMN output_file_bytes INTEGER;
