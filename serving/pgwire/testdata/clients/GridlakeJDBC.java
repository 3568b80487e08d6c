// A client of the PostgreSQL JDBC driver, as a BI tool uses it: the
// catalog through DatabaseMetaData, a prepared statement with a
// timestamptz parameter, every column type read. TestClients_RealEngine
// compiles it into a temporary folder, runs it against the real engine and
// asserts on what it prints, one "key|value" line each.
//
// Usage: java GridlakeJDBC URL USER PASSWORD
import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.Statement;
import java.sql.Timestamp;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.Properties;

public class GridlakeJDBC {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.setProperty("user", args[1]);
        props.setProperty("password", args[2]);
        props.setProperty("ApplicationName", "gridlake-jdbc-test");
        try (Connection c = DriverManager.getConnection(args[0], props)) {
            DatabaseMetaData md = c.getMetaData();
            System.out.println("product|" + md.getDatabaseProductName() + " " + md.getDatabaseProductVersion());
            try (ResultSet rs = md.getSchemas()) {
                while (rs.next()) {
                    System.out.println("schema|" + rs.getString("TABLE_SCHEM"));
                }
            }
            try (ResultSet rs = md.getTables(null, null, "%", new String[] {"TABLE", "VIEW"})) {
                while (rs.next()) {
                    System.out.println("table|" + rs.getString("TABLE_SCHEM") + "|" + rs.getString("TABLE_NAME") + "|"
                            + rs.getString("TABLE_TYPE") + "|" + rs.getString("REMARKS"));
                }
            }
            try (ResultSet rs = md.getColumns(null, null, "battery_stats_1m", "%")) {
                while (rs.next()) {
                    System.out.println("column|" + rs.getString("TABLE_NAME") + "|" + rs.getString("COLUMN_NAME") + "|"
                            + rs.getInt("DATA_TYPE") + "|" + rs.getString("TYPE_NAME") + "|" + rs.getInt("ORDINAL_POSITION") + "|"
                            + rs.getString("REMARKS"));
                }
            }
            try (ResultSet rs = md.getColumns(null, "main", "battery_now", "soc_pct")) {
                while (rs.next()) {
                    System.out.println("column|" + rs.getString("TABLE_NAME") + "|" + rs.getString("COLUMN_NAME") + "|"
                            + rs.getInt("DATA_TYPE") + "|" + rs.getString("TYPE_NAME") + "|" + rs.getInt("ORDINAL_POSITION") + "|"
                            + rs.getString("REMARKS"));
                }
            }
            try (ResultSet rs = md.getPrimaryKeys(null, "main", "battery_now")) {
                int n = 0;
                while (rs.next()) {
                    n++;
                }
                System.out.println("primary_keys|" + n);
            }

            // A prepared statement with a timestamptz parameter, run past the
            // driver's prepareThreshold (5) so that it switches to a named
            // statement and binary results.
            OffsetDateTime since = OffsetDateTime.now(ZoneOffset.UTC).minusDays(1);
            String q = "SELECT battery_id, window_start, n, voltage_v_mean, true AS flag, n::HUGEINT * 2 AS big, 7::INTEGER AS small "
                    + "FROM battery_stats_1m WHERE window_start >= ? ORDER BY window_start, battery_id LIMIT 3";
            try (PreparedStatement ps = c.prepareStatement(q)) {
                for (int run = 1; run <= 7; run++) {
                    if (run % 2 == 1) {
                        ps.setObject(1, since);
                    } else {
                        ps.setTimestamp(1, Timestamp.from(since.toInstant()));
                    }
                    int rows = 0;
                    try (ResultSet rs = ps.executeQuery()) {
                        if (run == 1) {
                            ResultSetMetaData rm = rs.getMetaData();
                            for (int i = 1; i <= rm.getColumnCount(); i++) {
                                System.out.println("result_column|" + rm.getColumnName(i) + "|" + rm.getColumnTypeName(i) + "|" + rm.getColumnType(i));
                            }
                        }
                        while (rs.next()) {
                            rows++;
                            String id = rs.getString("battery_id");
                            OffsetDateTime start = rs.getObject("window_start", OffsetDateTime.class);
                            long n = rs.getLong("n");
                            double mean = rs.getDouble("voltage_v_mean");
                            boolean flag = rs.getBoolean("flag");
                            BigDecimal big = rs.getBigDecimal("big");
                            int small = rs.getInt("small");
                            if (run == 1 || run == 7) {
                                System.out.println("row" + run + "|" + id + "|" + start + "|" + !start.isBefore(since) + "|" + n + "|"
                                        + (mean > 0) + "|" + flag + "|" + big + "|" + big.equals(BigDecimal.valueOf(2 * n)) + "|" + small);
                            }
                        }
                    }
                    System.out.println("run|" + run + "|" + rows);
                }
            }

            // A simple statement: counts, text and a NULL.
            try (Statement st = c.createStatement();
                    ResultSet rs = st.executeQuery("SELECT count(*) AS n, 'héllo' AS s, NULL::DOUBLE AS missing, 1.5::DOUBLE AS d FROM battery_now")) {
                rs.next();
                double missing = rs.getDouble("missing");
                boolean wasNull = rs.wasNull();
                System.out.println("count|" + rs.getLong("n") + "|" + rs.getString("s") + "|" + missing + "|" + wasNull + "|" + rs.getDouble("d"));
            }
        }
        System.out.println("done");
    }
}
