DROP TABLE approval_links;
