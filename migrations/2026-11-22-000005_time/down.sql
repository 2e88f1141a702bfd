DROP TABLE timers;
DROP TABLE delegations;
DROP TABLE calendars;
