// @generated automatically by Diesel CLI.

diesel::table! {
    approval_links (token_hash) {
        token_hash -> Text,
        tenant_id -> Text,
        approval_id -> Uuid,
        stage -> Int4,
        approver_id -> Text,
        recipient_id -> Text,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    approval_tasks (tenant_id, approval_id, stage, approver_id) {
        tenant_id -> Text,
        approval_id -> Uuid,
        stage -> Int4,
        approver_id -> Text,
        state -> Text,
        verdict -> Nullable<Text>,
        decided_at -> Nullable<Timestamptz>,
        comment -> Nullable<Text>,
        actor_id -> Nullable<Text>,
        on_behalf_of -> Nullable<Text>,
    }
}

diesel::table! {
    approvals (tenant_id, id) {
        tenant_id -> Text,
        id -> Uuid,
        ticket_id -> Text,
        ticket -> Jsonb,
        process_id -> Nullable<Uuid>,
        process_version -> Nullable<Int4>,
        process_name -> Nullable<Text>,
        definition -> Jsonb,
        state -> Text,
        engine -> Jsonb,
        current_stage -> Nullable<Int4>,
        exclusive -> Bool,
        description -> Nullable<Text>,
        requested_by -> Nullable<Text>,
        status_to_set -> Nullable<Text>,
        decided_at -> Nullable<Timestamptz>,
        last_sequence -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        view -> Nullable<Json>,
    }
}

diesel::table! {
    calendars (tenant_id, id) {
        tenant_id -> Text,
        id -> Text,
        definition -> Jsonb,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    delegations (tenant_id, principal_id) {
        tenant_id -> Text,
        principal_id -> Text,
        delegate_id -> Text,
        starts_at -> Timestamptz,
        ends_at -> Timestamptz,
        note -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    events (tenant_id, id) {
        position -> Int8,
        tenant_id -> Text,
        id -> Uuid,
        approval_id -> Nullable<Uuid>,
        sequence -> Int8,
        #[sql_name = "type"]
        type_ -> Text,
        payload -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    host_action_attempts (tenant_id, id) {
        tenant_id -> Text,
        id -> Int8,
        delivery_id -> Uuid,
        step -> Int4,
        method -> Text,
        url -> Text,
        attempted_at -> Timestamptz,
        status_code -> Nullable<Int4>,
        latency_ms -> Int4,
        error -> Nullable<Text>,
        response_excerpt -> Nullable<Text>,
    }
}

diesel::table! {
    host_action_deliveries (tenant_id, id) {
        tenant_id -> Text,
        id -> Uuid,
        action_id -> Uuid,
        event_id -> Uuid,
        event_position -> Int8,
        approval_id -> Nullable<Uuid>,
        event_type -> Text,
        state -> Text,
        step -> Int4,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        leased_by -> Nullable<Int4>,
        leased_until -> Nullable<Timestamptz>,
        last_status -> Nullable<Int4>,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    host_actions (tenant_id, id) {
        tenant_id -> Text,
        id -> Uuid,
        name -> Text,
        event_types -> Array<Nullable<Text>>,
        when_condition -> Nullable<Text>,
        requests -> Jsonb,
        secrets -> Jsonb,
        enabled -> Bool,
        version -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    idempotency_keys (tenant_id, client_id, key) {
        tenant_id -> Text,
        client_id -> Text,
        key -> Text,
        request_hash -> Text,
        status -> Nullable<Int2>,
        response -> Nullable<Text>,
        created_at -> Timestamptz,
        completed_at -> Nullable<Timestamptz>,
        headers -> Nullable<Text>,
        sealed -> Bool,
    }
}

diesel::table! {
    principals (tenant_id, id) {
        tenant_id -> Text,
        id -> Text,
        kind -> Text,
        display_name -> Text,
        email -> Nullable<Text>,
        locale -> Text,
        time_zone -> Text,
        manager_id -> Nullable<Text>,
        roles -> Array<Nullable<Text>>,
        active -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    process_versions (tenant_id, process_id, version) {
        tenant_id -> Text,
        process_id -> Uuid,
        version -> Int4,
        definition -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    processes (tenant_id, id) {
        tenant_id -> Text,
        id -> Uuid,
        name -> Text,
        current_version -> Int4,
        enabled -> Bool,
        disabled_reason -> Nullable<Text>,
        expires_at -> Nullable<Timestamptz>,
        deleted_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    rules (tenant_id, id) {
        tenant_id -> Text,
        id -> Uuid,
        name -> Text,
        process_id -> Uuid,
        on_status -> Text,
        condition -> Nullable<Text>,
        priority -> Int4,
        enabled -> Bool,
        on_leave -> Text,
        version -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    tickets (tenant_id, id) {
        tenant_id -> Text,
        id -> Text,
        title -> Nullable<Text>,
        requester_id -> Nullable<Text>,
        status -> Nullable<Text>,
        attributes -> Jsonb,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    timers (id) {
        id -> Uuid,
        tenant_id -> Text,
        approval_id -> Uuid,
        stage -> Int4,
        kind -> Text,
        seq -> Int4,
        due_at -> Timestamptz,
        fired_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    webhook_attempts (id) {
        id -> Int8,
        delivery_id -> Uuid,
        attempted_at -> Timestamptz,
        status_code -> Nullable<Int4>,
        latency_ms -> Int4,
        error -> Nullable<Text>,
        response_excerpt -> Nullable<Text>,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Uuid,
        tenant_id -> Text,
        endpoint_id -> Uuid,
        event_id -> Uuid,
        event_position -> Int8,
        approval_id -> Nullable<Uuid>,
        event_type -> Text,
        state -> Text,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        leased_until -> Nullable<Timestamptz>,
        last_status -> Nullable<Int4>,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        leased_by -> Nullable<Int4>,
    }
}

diesel::table! {
    webhook_endpoints (tenant_id, id) {
        tenant_id -> Text,
        id -> Uuid,
        url -> Text,
        description -> Nullable<Text>,
        event_types -> Array<Nullable<Text>>,
        enabled -> Bool,
        disabled_reason -> Nullable<Text>,
        secret -> Text,
        failing_since -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        previous_secrets -> Jsonb,
    }
}

diesel::joinable!(webhook_attempts -> webhook_deliveries (delivery_id));

diesel::allow_tables_to_appear_in_same_query!(
    approval_links,
    approval_tasks,
    approvals,
    calendars,
    delegations,
    events,
    host_action_attempts,
    host_action_deliveries,
    host_actions,
    idempotency_keys,
    principals,
    process_versions,
    processes,
    rules,
    tickets,
    timers,
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
);
