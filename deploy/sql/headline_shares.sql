-- deploy/sql/headline_shares.sql — the headline shares of `regstream report`
-- (the KIB evaluation report's section 3.1, SPEC §8) as SQL views over the
-- rollup table that `regstream run --postgres` or `regstream export
-- --postgres [--follow]` keeps (SPEC §12): the example a BI tool (Power BI,
-- Tableau, Metabase, Superset, Grafana) starts from.
--
--   psql "$CONNINFO" -f deploy/sql/headline_shares.sql
--   SELECT * FROM regstream_headline_shares WHERE period = 202302;
--   SELECT * FROM regstream_municipality_shares WHERE period = 202302 ORDER BY municipality;
--
-- Every share is a percentage in double precision, computed as the report
-- computes it (100 * part / whole), NULL where the whole is 0 (the report's
-- "n/a"). The rows of one period are the participants measured at that
-- month (SPEC §3: every member adds to each month from entry to its latest
-- month), so the report's `--at YYYYMM` is `WHERE period = YYYYMM` here.
--
-- The table is regstream_rollup (the default of --table); for another one,
-- replace the name below. On a table written with --min-cell N the
-- suppressed counts are NULL and withheld rows are missing: sums then cover
-- the published cells only, and the shares are not the exact ones.

CREATE OR REPLACE VIEW regstream_headline_shares AS
WITH t AS (
  SELECT period,
         sum(members) AS members,
         sum(members) FILTER (WHERE visitation = 'AKTIVITETSPARAT') AS akt,
         sum(members) FILTER (WHERE visitation = 'JOBPARAT') AS job,
         sum(members) FILTER (WHERE visitation = 'SELVFORSOERGENDE') AS selv,
         sum(members) FILTER (WHERE visitation = 'UDDANNELSESPARAT') AS udd,
         sum(members) FILTER (WHERE visitation IN ('OEVRIG', 'UDDANNELSESPARAT')) AS oevrig,
         sum(acc_goal1) AS g1,
         sum(acc_goal2) AS g2,
         sum(acc_goal3) AS g3,
         sum(acc_goal1 + acc_goal2) FILTER (WHERE visitation = 'AKTIVITETSPARAT') AS akt_g12,
         sum(durable_full_goal1) AS full_g1,
         sum(durable_partial_goal1) AS part_g1,
         sum(durable_full_goal2) AS full_g2,
         sum(durable_partial_goal2) AS part_g2,
         sum(durable_full_goal3) AS full_g3,
         sum(durable_partial_goal3) AS part_g3,
         sum(status_education + status_employed_full + status_employed_part) AS edu_emp,
         sum(status_flexjob) AS flex,
         sum(status_disability_pension) AS dp,
         sum(status_on_benefit) AS benefit,
         sum(status_self_supporting) AS self,
         sum(status_company_placement) AS placement,
         sum(status_education + status_employed_full + status_employed_part)
           FILTER (WHERE visitation = 'AKTIVITETSPARAT') AS akt_edu_emp,
         sum(status_flexjob) FILTER (WHERE visitation = 'AKTIVITETSPARAT') AS akt_flex,
         sum(status_disability_pension) FILTER (WHERE visitation = 'AKTIVITETSPARAT') AS akt_dp,
         count(DISTINCT municipality) AS municipalities
    FROM regstream_rollup
   GROUP BY period
)
SELECT period,
       members,
       municipalities,
       -- entry visitation (share of participants)
       100.0::float8 * coalesce(akt, 0)::float8 / nullif(members, 0)::float8 AS aktivitetsparat_pct,
       100.0::float8 * coalesce(job, 0)::float8 / nullif(members, 0)::float8 AS jobparat_pct,
       100.0::float8 * coalesce(selv, 0)::float8 / nullif(members, 0)::float8 AS selvforsoergende_pct,
       100.0::float8 * coalesce(oevrig, 0)::float8 / nullif(members, 0)::float8 AS oevrig_ydelse_pct,
       100.0::float8 * coalesce(udd, 0)::float8 / nullif(oevrig, 0)::float8 AS oevrig_uddannelsesparat_pct,
       -- accumulated goal over the project (share of participants)
       100.0::float8 * g1::float8 / nullif(members, 0)::float8 AS goal1_pct,
       100.0::float8 * g2::float8 / nullif(members, 0)::float8 AS goal2_pct,
       100.0::float8 * g3::float8 / nullif(members, 0)::float8 AS goal3_pct,
       100.0::float8 * (g1 + g2)::float8 / nullif(members, 0)::float8 AS goal12_pct,
       100.0::float8 * coalesce(akt_g12, 0)::float8 / nullif(akt, 0)::float8 AS goal12_aktivitetsparat_pct,
       -- durable employment at the month (share of the goal group)
       100.0::float8 * full_g1::float8 / nullif(g1, 0)::float8 AS goal1_durable_full_pct,
       100.0::float8 * part_g1::float8 / nullif(g1, 0)::float8 AS goal1_durable_partial_pct,
       100.0::float8 * full_g2::float8 / nullif(g2, 0)::float8 AS goal2_durable_full_pct,
       100.0::float8 * part_g2::float8 / nullif(g2, 0)::float8 AS goal2_durable_partial_pct,
       100.0::float8 * full_g3::float8 / nullif(g3, 0)::float8 AS goal3_durable_full_pct,
       100.0::float8 * part_g3::float8 / nullif(g3, 0)::float8 AS goal3_durable_partial_pct,
       -- status at the month, all participants
       100.0::float8 * edu_emp::float8 / nullif(members, 0)::float8 AS education_or_employment_pct,
       100.0::float8 * flex::float8 / nullif(members, 0)::float8 AS flexjob_pct,
       100.0::float8 * dp::float8 / nullif(members, 0)::float8 AS disability_pension_pct,
       100.0::float8 * benefit::float8 / nullif(members, 0)::float8 AS on_benefit_pct,
       100.0::float8 * self::float8 / nullif(members, 0)::float8 AS self_supporting_pct,
       100.0::float8 * placement::float8 / nullif(members, 0)::float8 AS company_placement_pct,
       -- status at the month, aktivitetsparate
       100.0::float8 * coalesce(akt_edu_emp, 0)::float8 / nullif(akt, 0)::float8 AS aktivitetsparat_education_or_employment_pct,
       100.0::float8 * coalesce(akt_flex, 0)::float8 / nullif(akt, 0)::float8 AS aktivitetsparat_flexjob_pct,
       100.0::float8 * coalesce(akt_dp, 0)::float8 / nullif(akt, 0)::float8 AS aktivitetsparat_disability_pension_pct
  FROM t;

-- Per entry municipality (official code; names in SPEC's municipalities.csv):
-- goal 1 or 2 reached, durable full-time employment (any goal) and the
-- aktivitetsparat share of entries — the report's per-municipality figures
-- (its lowest and highest goal 1+2 municipality are min/max over this view).
CREATE OR REPLACE VIEW regstream_municipality_shares AS
SELECT period,
       municipality,
       sum(members) AS members,
       100.0::float8 * sum(acc_goal1 + acc_goal2)::float8 / nullif(sum(members), 0)::float8 AS goal12_pct,
       100.0::float8 * sum(durable_full_goal1 + durable_full_goal2 + durable_full_goal3 + durable_full_none)::float8
         / nullif(sum(members), 0)::float8 AS durable_full_pct,
       100.0::float8 * coalesce(sum(members) FILTER (WHERE visitation = 'AKTIVITETSPARAT'), 0)::float8
         / nullif(sum(members), 0)::float8 AS aktivitetsparat_pct
  FROM regstream_rollup
 GROUP BY period, municipality;
