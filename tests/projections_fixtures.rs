//! The projections over the real Chainhook fixtures, with numbers checked by hand against
//! the fixture JSON (see each test's comments), then a rollback and a replay.
mod common;
mod projection_support;

use common::{Backend, TestApp};
use projection_support::{dump, get, run_replay, wait_projected};
use serde_json::{json, Value};

fn fixture(name: &str) -> Option<Value> {
    let dir = common::fixtures_dir()?;
    let entry = std::fs::read_dir(&dir).ok()?.flatten().find(|e| {
        let n = e.file_name().to_string_lossy().to_string();
        n.starts_with(name) && n.ends_with(".json")
    })?;
    serde_json::from_str(&std::fs::read_to_string(entry.path()).ok()?).ok()
}

const SPWK: &str = "SPWKDKPZ3QDPQGDADWJ3EWPAP14CB1N1HDQ897W5";
const RESERVE: &str = "SP2C2YFP12AJZB4MABJBAJ55XECVS7E4PMMZ89YZR.arkadiko-stx-reserve-v1-1";
const USDA: &str = "SP2C2YFP12AJZB4MABJBAJ55XECVS7E4PMMZ89YZR.usda-token::usda";

/// Fixture 03, block 34307, one transaction from SPWK…: FTMint of 130000000 usda to SPWK…,
/// a print `{action: "created", type: "vault", data: {id: 1, …}}` by arkadiko-freddie, an
/// STXTransfer of 300000000 from SPWK… to the reserve contract, and two more prints.
async fn fixture_03_balances_and_vault(backend: Backend) {
    let Some(payload) = fixture("03_") else {
        return;
    };
    let app = TestApp::spawn(backend).await;
    let (status, _) = app.post_payload(&payload).await;
    assert_eq!(status, 200);
    let head = wait_projected(&app).await;
    assert_eq!(head, 6, "one block marker + five events");

    let sender = get(&app, &format!("/api/accounts/{SPWK}")).await;
    assert_eq!(
        sender,
        json!({
            "principal": SPWK,
            "stxBalanceChange": "-300000000",
            "fungibleTokens": {USDA: "130000000"},
            "nfts": [],
            "firstActivityHeight": 34307,
            "lastActivityHeight": 34307,
            // the transaction's sender: all five events name it
            "eventCount": 5,
            "seq": 6
        })
    );
    let reserve = get(&app, &format!("/api/accounts/{RESERVE}")).await;
    assert_eq!(reserve["stxBalanceChange"], "300000000");
    assert_eq!(reserve["fungibleTokens"], json!({}));
    assert_eq!(reserve["eventCount"], 1);

    // The transfer belongs to the called contract (freddie), like its print (seq 3, 4).
    let freddie = get(
        &app,
        "/api/contracts/SP2C2YFP12AJZB4MABJBAJ55XECVS7E4PMMZ89YZR.arkadiko-freddie-v1-1",
    )
    .await;
    assert_eq!(
        freddie,
        json!({
            "contractId": "SP2C2YFP12AJZB4MABJBAJ55XECVS7E4PMMZ89YZR.arkadiko-freddie-v1-1",
            "eventCounts": {"print_event": 1, "stx_transfer_event": 1},
            "lastBlockHeight": 34307,
            "lastSeq": 4,
            "seq": 6
        })
    );
    let usda = get(
        &app,
        "/api/contracts/SP2C2YFP12AJZB4MABJBAJ55XECVS7E4PMMZ89YZR.usda-token",
    )
    .await;
    assert_eq!(usda["eventCounts"], json!({"ft_mint_event": 1}));
    assert_eq!(usda["lastSeq"], 2);

    // Default mapping: bare verb "created", kind from `type`, id from `data.id`.
    let vault = get(&app, "/api/entities/vault/1").await;
    assert_eq!(vault["kind"], "vault");
    assert_eq!(vault["id"], "1");
    assert_eq!(vault["version"], 1);
    assert_eq!(vault["pendingOps"], json!([]));
    assert_eq!(vault["seq"], 6);
    assert_eq!(vault["fields"]["owner"], SPWK);
    assert_eq!(vault["fields"]["debt"], 130000000);
    assert_eq!(vault["fields"]["collateral"], 300000000);
    assert!(vault["fields"].get("id").is_none());

    for path in [
        "/api/accounts/SP000UNKNOWN",
        "/api/contracts/SP1.nope",
        "/api/entities/vault/2",
    ] {
        let (status, body) = app.get_json(path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["error"]["code"], "not_found");
    }
}
both_backends!(fixtures: fixture_03_balances_and_vault, fixture_03_balances_and_vault);

const ST1PQ: &str = "ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM";
const ST1SJ3: &str = "ST1SJ3DTE5DN7X54YDH5D64R3BCB6A2AG2ZQ8YPD5";
const ST2JHG: &str = "ST2JHG361ZXG51QTKY2NQCVBPPRRE2KZB1HR05NNC";
const ST2CY5: &str = "ST2CY5V39NHDPWSXMW9QDT3HC3GD6Q6XX4CFRK9AG";
const V4: &str = "ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM.test-functions-v4";
const DOC_NFT: &str = "ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM.test-functions-v4::doc-nft";

/// Devnet fixtures, all sent by ST1PQ…:
/// - 07 (height 12): three STX transfers of 1000 to ST2JHG…, ST2CY5…, ST1SJ3…;
/// - 08 (height 12): NFT mint of doc-nft id 5 to ST1SJ3…;
/// - 05 (height 13): STX transfer of 50 to ST1SJ3….
///
/// By hand: ST1PQ… −3000 − 50 = −3050 over 3 + 1 + 1 = 5 events (heights 12..13);
/// ST1SJ3… +1000 + 50 = 1050 over 3 events, holding doc-nft 5. Rolling back fixture 05's
/// block takes ST1PQ… back to −3000 and ST1SJ3… to 1000, both last active at 12.
async fn devnet_transfers_nft_and_rollback(backend: Backend) {
    let (Some(f05), Some(f07), Some(f08)) = (fixture("05_"), fixture("07_"), fixture("08_")) else {
        return;
    };
    let app = TestApp::spawn(backend).await;
    for p in [&f07, &f08, &f05] {
        let (status, body) = app.post_payload(p).await;
        assert_eq!(status, 200, "{body}");
    }
    wait_projected(&app).await;
    let a = get(&app, &format!("/api/accounts/{ST1PQ}")).await;
    assert_eq!(a["stxBalanceChange"], "-3050");
    assert_eq!(a["eventCount"], 5);
    assert_eq!(
        (
            a["firstActivityHeight"].as_i64(),
            a["lastActivityHeight"].as_i64()
        ),
        (Some(12), Some(13))
    );
    assert_eq!(a["nfts"], json!([]));
    let b = get(&app, &format!("/api/accounts/{ST1SJ3}")).await;
    assert_eq!(b["stxBalanceChange"], "1050");
    assert_eq!(b["eventCount"], 3);
    assert_eq!(b["nfts"], json!([{"assetClass": DOC_NFT, "id": "5"}]));
    for r in [ST2JHG, ST2CY5] {
        let r = get(&app, &format!("/api/accounts/{r}")).await;
        assert_eq!(r["stxBalanceChange"], "1000");
        assert_eq!(r["eventCount"], 1);
    }
    // 07 calls test-functions; 08 mints a test-functions-v4 NFT; 05 calls test-functions-v4.
    let many = get(
        &app,
        "/api/contracts/ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM.test-functions",
    )
    .await;
    assert_eq!(many["eventCounts"], json!({"stx_transfer_event": 3}));
    let v4 = get(&app, &format!("/api/contracts/{V4}")).await;
    assert_eq!(
        v4["eventCounts"],
        json!({"nft_mint_event": 1, "stx_transfer_event": 1})
    );
    assert_eq!(v4["lastBlockHeight"], 13);

    // Roll back fixture 05's block: its transfer is undone by the rollback entry.
    let mut rollback = f05.clone();
    rollback["rollback"] = rollback["apply"].take();
    rollback["apply"] = json!([]);
    let (status, body) = app.post_payload(&rollback).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rolledBackBlocks"], 1);
    let head = wait_projected(&app).await;
    let a = get(&app, &format!("/api/accounts/{ST1PQ}")).await;
    assert_eq!(a["stxBalanceChange"], "-3000");
    assert_eq!(a["eventCount"], 4);
    assert_eq!(a["lastActivityHeight"], 12);
    assert_eq!(a["seq"], head);
    let b = get(&app, &format!("/api/accounts/{ST1SJ3}")).await;
    assert_eq!(b["stxBalanceChange"], "1000");
    assert_eq!(b["lastActivityHeight"], 12);
    assert_eq!(b["eventCount"], 2);
    let v4 = get(&app, &format!("/api/contracts/{V4}")).await;
    assert_eq!(v4["eventCounts"], json!({"nft_mint_event": 1}));
    assert_eq!(
        v4["lastBlockHeight"], 12,
        "the undone block no longer counts"
    );
    // The log ends with the rollback entry, then the block-rolled-back marker.
    assert_eq!(
        v4["lastSeq"],
        head - 1,
        "the rollback entry is the last entry about it"
    );

    // A replay from zero reaches the state reached live.
    let live = dump(&app.db.url).await;
    let report = run_replay(&app.db.url, None, 0).await;
    assert_eq!(report.checkpoint, head);
    assert_eq!(dump(&app.db.url).await, live);
    let b2 = get(&app, &format!("/api/accounts/{ST1SJ3}")).await;
    assert_eq!(b2, b, "served from the new generation, same answer");
}
both_backends!(
    fixtures: devnet_transfers_nft_and_rollback,
    devnet_transfers_nft_and_rollback
);
