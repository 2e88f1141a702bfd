DROP TABLE process_versions;
DROP TABLE processes;
DROP TABLE principals;
