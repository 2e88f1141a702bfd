// @generated automatically by Diesel CLI.

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

diesel::allow_tables_to_appear_in_same_query!(principals, process_versions, processes,);
