//! Deleting a ticket.

use super::helpers::*;
use crate::helpers::*;

// ---------------------------------------------------------------------------------------------
// 14. Deleting a ticket

#[tokio::test]
async fn deleting_a_ticket_removes_its_approvals_and_keeps_the_others() {
    let app = spawn_app().await;
    people(&app, &["u-1"]).await;
    let gone = id_of(&ad_hoc(&app, "T-1", &["u-1"], count(1)).await);
    decided(&app, &gone, "u-1", "approve").await;
    let gone2 = id_of(&ad_hoc(&app, "T-1", &["u-1"], count(1)).await);
    let kept = id_of(&ad_hoc(&app, "T-2", &["u-1"], count(1)).await);
    let a = app.delete("/v1/tickets/T-1").await;
    assert_eq!(a.status, 204, "{}", a.text);
    for id in [&gone, &gone2] {
        app.get(&format!("/v1/approvals/{id}"))
            .await
            .assert_problem(404, "not_found");
        app.get(&format!("/v1/approvals/{id}/events"))
            .await
            .assert_problem(404, "not_found");
    }
    assert_eq!(view(&app, &kept).await["state"], "pending");
    assert_eq!(events(&app, &kept).await.len(), 1);
    assert_eq!(ids(&app.get("/v1/approvals").await.body), vec![kept]);
    // Deleting again, or an unknown ticket, is still 204.
    assert_eq!(app.delete("/v1/tickets/T-1").await.status, 204);
    // The ticket can be asked about again.
    ad_hoc(&app, "T-1", &["u-1"], count(1)).await;
}
