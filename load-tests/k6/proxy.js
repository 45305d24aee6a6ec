// k6 load script: POST a 1 KiB JSON body and check for 200.
//   TARGET    URL to hit (default http://127.0.0.1:18080/bench, the proxy)
//   VUS       virtual users (default 16)
//   DURATION  test duration (default 10s)
// Run through load-tests/k6.sh, which starts the mock upstream and the proxy.
import http from 'k6/http';
import { check } from 'k6';

const TARGET = __ENV.TARGET || 'http://127.0.0.1:18080/bench';

export const options = {
  vus: parseInt(__ENV.VUS || '16', 10),
  duration: __ENV.DURATION || '10s',
  thresholds: {
    http_req_failed: ['rate<0.01'],
  },
  // Trend stats printed in the end-of-test summary.
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(99)', 'max'],
};

// Exactly 1024 bytes: {"pad":"xxx...x"} (10 bytes of JSON around 1014 pad bytes).
const BODY = `{"pad":"${'x'.repeat(1014)}"}`;
const PARAMS = { headers: { 'Content-Type': 'application/json' } };

export default function () {
  const res = http.post(TARGET, BODY, PARAMS);
  check(res, {
    'status is 200': (r) => r.status === 200,
  });
}
