// The least any client can do to run one job as a Pod and get its output and exit code back,
// for bench/k8s_overhead.sh: the same API calls as `kbatch k8s run` (find the node by its
// kubernetes.io/hostname label, create a Pod that passes Pod Security "restricted", watch it until
// its container has terminated, read its log, delete it with a uid precondition) in plain C on
// libcurl, in one thread, over two connections. It checks nothing and parses JSON by searching
// for keys: it is not a client, only the cost of the work, the way bench/floor/runner_floor.c is
// for the local runner.
//   k8s_floor SERVER_URL CA_FILE TOKEN HOST NAMESPACE IMAGE UID
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct buffer {
  char* data;
  size_t size;
  int stop_at_terminated;  // for the watch: end the transfer once the container has terminated
};

static size_t collect(char* data, size_t size, size_t count, void* user) {
  struct buffer* buffer = user;
  size_t bytes = size * count;
  char* grown = realloc(buffer->data, buffer->size + bytes + 1);
  if (grown == NULL) return 0;
  buffer->data = grown;
  memcpy(buffer->data + buffer->size, data, bytes);
  buffer->size += bytes;
  buffer->data[buffer->size] = '\0';
  if (buffer->stop_at_terminated && strstr(buffer->data, "\"terminated\"") != NULL) return 0;
  return bytes;
}

static const char* server;
static const char* ca_file;
static struct curl_slist* headers;

// Performs one request on `curl` (whose connection stays open for the next) into `out`.
static long request(CURL* curl, const char* method, const char* path, const char* body,
                    struct buffer* out) {
  char url[2048];
  snprintf(url, sizeof url, "%s%s", server, path);
  curl_easy_reset(curl);
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_CAINFO, ca_file);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
  if (body != NULL) curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, out);
  CURLcode code = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  if (code != CURLE_OK && !(out->stop_at_terminated && code == CURLE_WRITE_ERROR)) {
    fprintf(stderr, "k8s_floor: %s %s: %s\n", method, path, curl_easy_strerror(code));
    exit(125);
  }
  return status;
}

// Copies the string value that follows the first `"key":"` after `from` into `out`.
static void stringAfter(const char* text, const char* from, const char* key, char* out, size_t n) {
  const char* start = from != NULL ? strstr(text, from) : text;
  char pattern[128];
  snprintf(pattern, sizeof pattern, "\"%s\": \"", key);
  const char* found = start != NULL ? strstr(start, pattern) : NULL;
  size_t skip = strlen(pattern);
  if (found == NULL) {  // compact JSON
    snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
    found = start != NULL ? strstr(start, pattern) : NULL;
    skip = strlen(pattern);
  }
  if (found == NULL) {
    fprintf(stderr, "k8s_floor: no %s in the answer\n", key);
    exit(125);
  }
  found += skip;
  size_t length = strcspn(found, "\"");
  if (length >= n) length = n - 1;
  memcpy(out, found, length);
  out[length] = '\0';
}

int main(int argc, char** argv) {
  if (argc != 8) {
    fprintf(stderr, "usage: k8s_floor SERVER_URL CA_FILE TOKEN HOST NAMESPACE IMAGE UID\n");
    return 2;
  }
  server = argv[1];
  ca_file = argv[2];
  const char *token = argv[3], *host = argv[4], *ns = argv[5], *image = argv[6];
  const long uid = atol(argv[7]);
  char line[4096];
  snprintf(line, sizeof line, "Authorization: Bearer %s", token);
  headers = curl_slist_append(NULL, line);
  headers = curl_slist_append(headers, "Content-Type: application/json");
  curl_global_init(CURL_GLOBAL_DEFAULT);
  CURLSH* share = curl_share_init();  // the watch resumes the first connection's TLS session
  curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  CURL* requests = curl_easy_init();
  CURL* watch = curl_easy_init();

  struct buffer answer = {0};
  char path[2048], node[256], pod_uid[128], version[64], name[128];
  snprintf(path, sizeof path, "/api/v1/nodes?labelSelector=kubernetes.io%%2Fhostname%%3D%s", host);
  request(requests, "GET", path, NULL, &answer);
  stringAfter(answer.data, "\"items\"", "name", node, sizeof node);

  snprintf(name, sizeof name, "k8s-floor-%ld", (long)getpid());
  char manifest[4096];
  snprintf(manifest, sizeof manifest,
           "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\"},"
           "\"spec\":{\"nodeName\":\"%s\",\"restartPolicy\":\"Never\","
           "\"securityContext\":{\"runAsNonRoot\":true,\"runAsUser\":%ld,\"runAsGroup\":%ld,"
           "\"seccompProfile\":{\"type\":\"RuntimeDefault\"}},"
           "\"containers\":[{\"name\":\"job\",\"image\":\"%s\",\"command\":[\"true\"],"
           "\"securityContext\":{\"allowPrivilegeEscalation\":false,"
           "\"capabilities\":{\"drop\":[\"ALL\"]},\"readOnlyRootFilesystem\":true}}]}}",
           name, node, uid, uid, image);
  free(answer.data);
  answer = (struct buffer){0};
  snprintf(path, sizeof path, "/api/v1/namespaces/%s/pods", ns);
  if (request(requests, "POST", path, manifest, &answer) != 201) {
    fprintf(stderr, "k8s_floor: the POST failed: %s\n", answer.data);
    return 125;
  }
  stringAfter(answer.data, "\"metadata\"", "uid", pod_uid, sizeof pod_uid);
  stringAfter(answer.data, "\"metadata\"", "resourceVersion", version, sizeof version);

  curl_easy_setopt(watch, CURLOPT_SHARE, share);
  struct buffer events = {0};
  events.stop_at_terminated = 1;
  snprintf(path, sizeof path,
           "/api/v1/namespaces/%s/pods?watch=true&fieldSelector=metadata.name%%3D%s"
           "&resourceVersion=%s",
           ns, name, version);
  request(watch, "GET", path, NULL, &events);
  const char* exit_code = strstr(events.data, "\"exitCode\"");
  const int code = exit_code != NULL ? atoi(exit_code + strcspn(exit_code, "0123456789")) : 125;

  struct buffer log = {0};
  snprintf(path, sizeof path, "/api/v1/namespaces/%s/pods/%s/log", ns, name);
  request(requests, "GET", path, NULL, &log);
  if (log.size > 0) fwrite(log.data, 1, log.size, stdout);

  char options[512];
  snprintf(options, sizeof options,
           "{\"kind\":\"DeleteOptions\",\"apiVersion\":\"v1\",\"gracePeriodSeconds\":0,"
           "\"preconditions\":{\"uid\":\"%s\"}}",
           pod_uid);
  free(answer.data);
  answer = (struct buffer){0};
  snprintf(path, sizeof path, "/api/v1/namespaces/%s/pods/%s", ns, name);
  if (request(requests, "DELETE", path, options, &answer) != 200) {
    fprintf(stderr, "k8s_floor: the DELETE failed: %s\n", answer.data);
    return 125;
  }
  return code;
}
