"""Drift: differences between what amibot granted and AWS, each reported once, listed
by ``/ami audit --drift`` while open; and when the scheduled check last ran.
"""

from __future__ import annotations

from typing import Any

from bot.store.connection import StoreConnection


class DriftStore(StoreConnection):
    """The drift findings of :class:`bot.store.Store` (mixed in)."""

    def last_drift_check(self) -> float | None:
        """When the drift check last ran (None: never)."""
        row = self.db.execute("SELECT checked_at FROM drift_checks WHERE name = 'drift'").fetchone()
        return row["checked_at"] if row else None

    def set_drift_checked(self, at: float) -> None:
        """Record that the drift check ran at ``at``."""
        with self.transaction() as db:
            db.execute("DELETE FROM drift_checks WHERE name = 'drift'")
            db.execute("INSERT INTO drift_checks (name, checked_at) VALUES ('drift', ?)", [at])

    def record_drift(self, findings: list[Any], at: float, *, unread: Any = ()) -> None:
        """Store this check's findings: new ones open (unreported); a finding seen
        again stays as it is (reported once); open ones not seen any more are resolved.
        A resolved finding that comes back is open and unreported again. The findings
        of an AMI in ``unread`` ((account, region, image) the check could not read)
        stay as they were: a failed read is no answer."""
        kept = {tuple(k) for k in unread}
        with self.transaction() as db:
            seen = []
            for f in findings:
                seen.append(f.id)
                row = db.execute("SELECT resolved_at FROM drift_findings WHERE id = ?", [f.id]).fetchone()
                if row is None:
                    db.execute(
                        "INSERT INTO drift_findings (id, account_id, region, image_id, kind, subject, detail, fix, request, found_at)"
                        " VALUES (?,?,?,?,?,?,?,?,?,?)",
                        [f.id, f.account_id, f.region, f.image_id, f.kind, f.subject, f.detail, f.fix, f.request, at],
                    )
                elif row["resolved_at"] is not None:
                    db.execute("UPDATE drift_findings SET resolved_at = NULL, reported_at = NULL, found_at = ? WHERE id = ?", [at, f.id])
            open_rows = db.execute("SELECT id, account_id, region, image_id FROM drift_findings WHERE resolved_at IS NULL").fetchall()
            for row in open_rows:
                finding_id = row["id"]
                if finding_id not in seen and (row["account_id"], row["region"], row["image_id"]) not in kept:
                    db.execute("UPDATE drift_findings SET resolved_at = ? WHERE id = ?", [at, finding_id])

    def forget_drift_image(self, account_id: str, region: str, image_id: str, at: float) -> None:
        """Prune an AMI AWS says no longer exists from the drift ledger: later runs do
        not read it again, and its findings go (nothing of it is in force any more)."""
        where = [account_id, region, image_id]
        with self.transaction() as db:
            db.execute("DELETE FROM drift_gone WHERE account_id = ? AND region = ? AND image_id = ?", where)
            db.execute("INSERT INTO drift_gone (account_id, region, image_id, gone_at) VALUES (?,?,?,?)", [*where, at])
            db.execute("DELETE FROM drift_findings WHERE account_id = ? AND region = ? AND image_id = ?", where)

    def drift_gone_images(self) -> set[tuple[str, str, str]]:
        """The (account, region, image) pruned from the drift ledger."""
        rows = self.db.execute("SELECT account_id, region, image_id FROM drift_gone").fetchall()
        return {(r["account_id"], r["region"], r["image_id"]) for r in rows}

    def drift_findings(self, *, unreported_only: bool = False) -> list[dict[str, Any]]:
        """Open drift findings, oldest first."""
        sql = "SELECT * FROM drift_findings WHERE resolved_at IS NULL"
        if unreported_only:
            sql += " AND reported_at IS NULL"
        return [dict(r) for r in self.db.execute(sql + " ORDER BY found_at, id").fetchall()]

    def mark_drift_reported(self, finding_id: str, at: float) -> None:
        """Record that a finding was reported (it is not reported again)."""
        with self.transaction() as db:
            db.execute("UPDATE drift_findings SET reported_at = ? WHERE id = ?", [at, finding_id])
