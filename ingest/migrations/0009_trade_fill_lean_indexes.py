"""Leaner trade_fill: no FK constraints, no LIKE-twin indexes (see TradeFill's docstring).

The state changes move the unique key and the transaction-hash index into Meta, where Django
builds no `varchar_pattern_ops` twins. The database side drops exactly what the old state
built: the two twins and the two deferred FK constraints, found by catalog lookup rather than
by Django's hashed names, and renames the hash index to its Meta name. The unique constraint
keeps its name, so ON CONFLICT (idempotency_key) and existing databases go on unchanged.
"""

from django.db import migrations, models

FORWARD = """
DO $$
DECLARE item record;
BEGIN
    FOR item IN
        SELECT conname FROM pg_constraint WHERE conrelid = 'trade_fill'::regclass AND contype = 'f'
    LOOP
        EXECUTE format('ALTER TABLE trade_fill DROP CONSTRAINT %I', item.conname);
    END LOOP;
    FOR item IN
        SELECT i.relname FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_opclass o ON o.oid = x.indclass[0]
        WHERE x.indrelid = 'trade_fill'::regclass AND o.opcname = 'varchar_pattern_ops'
    LOOP
        EXECUTE format('DROP INDEX %I', item.relname);
    END LOOP;
    FOR item IN
        SELECT i.relname FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[0]
        WHERE x.indrelid = 'trade_fill'::regclass AND x.indnatts = 1 AND a.attname = 'transaction_hash'
          AND i.relname <> 'trade_fill_tx_hash'
    LOOP
        EXECUTE format('ALTER INDEX %I RENAME TO trade_fill_tx_hash', item.relname);
    END LOOP;
END $$;
"""

BACKWARD = """
CREATE INDEX IF NOT EXISTS trade_fill_idempotency_key_like ON trade_fill (idempotency_key varchar_pattern_ops);
CREATE INDEX IF NOT EXISTS trade_fill_transaction_hash_like ON trade_fill (transaction_hash varchar_pattern_ops);
ALTER TABLE trade_fill ADD CONSTRAINT trade_fill_market_id_fk_market_id FOREIGN KEY (market_id)
    REFERENCES market (id) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE trade_fill ADD CONSTRAINT trade_fill_wallet_id_fk_wallet_id FOREIGN KEY (wallet_id)
    REFERENCES wallet (id) DEFERRABLE INITIALLY DEFERRED;
"""


class Migration(migrations.Migration):
    dependencies = [("ingest", "0008_wallet_last_trade_unindexed")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(FORWARD, BACKWARD)],
            state_operations=[
                migrations.AlterField(
                    model_name="tradefill", name="idempotency_key", field=models.CharField(max_length=64)
                ),
                migrations.AlterField(
                    model_name="tradefill", name="transaction_hash", field=models.CharField(max_length=66)
                ),
                migrations.AlterField(
                    model_name="tradefill",
                    name="market",
                    field=models.ForeignKey(
                        db_constraint=False, db_index=False, on_delete=models.deletion.PROTECT,
                        related_name="fills", to="ingest.market",
                    ),
                ),
                migrations.AlterField(
                    model_name="tradefill",
                    name="wallet",
                    field=models.ForeignKey(
                        db_constraint=False, db_index=False, on_delete=models.deletion.PROTECT,
                        related_name="fills", to="ingest.wallet",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="tradefill",
                    constraint=models.UniqueConstraint(fields=("idempotency_key",), name="trade_fill_idempotency_key_key"),
                ),
                migrations.AddIndex(
                    model_name="tradefill", index=models.Index(fields=["transaction_hash"], name="trade_fill_tx_hash")
                ),
            ],
        )
    ]
