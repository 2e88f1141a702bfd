DROP TRIGGER events_host_action_fan_out ON events;
DROP FUNCTION signoff_host_action_fan_out();
DROP TABLE host_action_attempts;
DROP TABLE host_action_deliveries;
DROP TABLE host_actions;
