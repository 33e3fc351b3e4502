// Open Inference Protocol bodies (models/oip.h): what is written reads back the same, and
// every malformed body is refused with a message naming the problem.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "models/oip.h"
#include "models/remote_classifier.h"

namespace ipg::oip {
namespace {

std::string request(const std::string& input) { return R"({"inputs":[)" + input + "]}"; }

// The message of the OipError `body` raises when read as a request ("" if none).
std::string request_error(const std::string& body) {
  try {
    read_infer_request(body);
  } catch (const OipError& e) {
    return e.what();
  }
  return "";
}

std::string response_error(const std::string& body) {
  try {
    read_infer_response(body);
  } catch (const OipError& e) {
    return e.what();
  }
  return "";
}

TEST(Oip, RequestRoundTrip) {
  Tensor t{"input", {2, 1, 2, 2}, "FP32", {0, 0.25, 0.5, 1, 0.1f, 0.2f, 0.3f, 0.4f}};
  const Tensor back = read_infer_request(write_infer_request(t));
  EXPECT_EQ(back.name, "input");
  EXPECT_EQ(back.shape, t.shape);
  EXPECT_EQ(back.datatype, "FP32");
  ASSERT_EQ(back.data.size(), t.data.size());
  for (size_t i = 0; i < t.data.size(); ++i) EXPECT_EQ(float(back.data[i]), float(t.data[i]));
}

TEST(Oip, ResponseRoundTripLabelsAndLogits) {
  Tensor l{"label", {3}, "INT64", {4, 0, 9}};
  const Tensor lb = read_infer_response(write_infer_response("m", l));
  EXPECT_EQ(lb.datatype, "INT64");
  EXPECT_EQ(lb.data, l.data);
  Tensor z{"logits", {1, 3}, "FP32", {-1.5, 2.25, 0}};
  const Tensor zb = read_infer_response(write_infer_response("m", z));
  EXPECT_EQ(zb.shape, z.shape);
  EXPECT_EQ(zb.data, z.data);
}

TEST(Oip, NestedDataReadsFlat) {
  const Tensor t = read_infer_request(
      request(R"({"name":"x","shape":[2,2],"datatype":"FP32","data":[[1,2],[3,4]]})"));
  EXPECT_EQ(t.data, (std::vector<double>{1, 2, 3, 4}));
}

TEST(Oip, MalformedRequestsAreRefusedClearly) {
  EXPECT_NE(request_error("{not json").find("malformed JSON"), std::string::npos);
  EXPECT_NE(request_error("[1,2]").find("not a JSON object"), std::string::npos);
  EXPECT_NE(request_error("{}").find("missing \"inputs\""), std::string::npos);
  EXPECT_NE(request_error(R"({"inputs":{}})").find("exactly one"), std::string::npos);
  const std::string one = R"({"name":"x","shape":[1],"datatype":"FP32","data":[0]})";
  EXPECT_NE(request_error(R"({"inputs":[)" + one + "," + one + "]}").find("exactly one"),
            std::string::npos);
  EXPECT_NE(request_error(request(R"({"shape":[1],"datatype":"FP32","data":[0]})"))
                .find("missing \"name\""),
            std::string::npos);
  EXPECT_NE(request_error(request(R"({"name":"x","shape":[1],"datatype":"INT8","data":[0]})"))
                .find("not one of FP32"),
            std::string::npos);
  EXPECT_NE(request_error(request(R"({"name":"x","shape":[1],"datatype":"INT32","data":[0]})"))
                .find("expected FP32"),
            std::string::npos);
  // Shape against data count, both ways.
  EXPECT_NE(request_error(request(R"({"name":"x","shape":[2,2],"datatype":"FP32","data":[1,2,3]})"))
                .find("needs 4 values, \"data\" has 3"),
            std::string::npos);
  EXPECT_NE(request_error(request(R"({"name":"x","shape":[1],"datatype":"FP32","data":[1,2]})"))
                .find("has more"),
            std::string::npos);
  EXPECT_NE(request_error(request(R"({"name":"x","shape":[-1],"datatype":"FP32","data":[]})"))
                .find("not a size"),
            std::string::npos);
  EXPECT_NE(request_error(request(R"({"name":"x","shape":[1.5],"datatype":"FP32","data":[0]})"))
                .find("not a size"),
            std::string::npos);
  // Sizes whose product overflows or passes the cap are refused before any allocation.
  EXPECT_NE(request_error(request(
                R"({"name":"x","shape":[60000000,60000000,60000000],"datatype":"FP32","data":[]})"))
                .find("over the limit"),
            std::string::npos);
  EXPECT_NE(request_error(request(
                R"({"name":"x","shape":[1,1,1,1,1,1,1,1,1],"datatype":"FP32","data":[0]})"))
                .find("dimensions"),
            std::string::npos);
  EXPECT_NE(request_error(request(R"({"name":"x","shape":[],"datatype":"FP32","data":[0]})"))
                .find("scalar"),
            std::string::npos);
  EXPECT_NE(request_error(request(R"({"name":"x","shape":[1],"datatype":"FP32","data":["0"]})"))
                .find("not a number"),
            std::string::npos);
  EXPECT_NE(request_error(request(R"({"name":"x","shape":[1],"datatype":"FP32","data":[null]})"))
                .find("not a number"),
            std::string::npos);
  EXPECT_NE(request_error(request(R"({"name":"x","shape":[1],"datatype":"FP32","data":0})"))
                .find("not an array"),
            std::string::npos);
  EXPECT_EQ(request_error(request(R"({"name":"x","shape":[1],"datatype":"FP32","data":[0]})")), "");
}

TEST(Oip, IntegerOutputsMustHoldIntegers) {
  EXPECT_NE(response_error(R"({"outputs":[{"name":"l","shape":[2],"datatype":"INT64","data":[1,2.5]}]})")
                .find("not an integer"),
            std::string::npos);
  EXPECT_NE(response_error(R"({"outputs":[]})").find("non-empty"), std::string::npos);
  EXPECT_NE(response_error(R"({"model_name":"m"})").find("missing \"outputs\""), std::string::npos);
  EXPECT_EQ(response_error(R"({"outputs":[{"name":"l","shape":[2],"datatype":"INT32","data":[1,2]}]})"),
            "");
}

// A value its datatype cannot hold is refused (converting it would be undefined), and an
// FP32 value is kept as the float it is on the wire: what is read writes back the same.
TEST(Oip, ValuesMustFitTheirDatatype) {
  const auto out = [](const char* type, const char* value) {
    return std::string(R"({"outputs":[{"name":"o","shape":[1],"datatype":")") + type +
           R"(","data":[)" + value + "]}]}";
  };
  for (const auto& [type, value] : std::vector<std::pair<const char*, const char*>>{
           {"FP32", "1e300"}, {"FP32", "-3.5e38"}, {"INT32", "2147483648"}, {"INT32", "-2147483649"},
           {"INT64", "18446744073709551615"}, {"INT64", "9223372036854775808"}})
    EXPECT_NE(response_error(out(type, value)).find("outside the range of its datatype"), std::string::npos)
        << type << " " << value;
  for (const auto& [type, value] : std::vector<std::pair<const char*, const char*>>{
           {"FP32", "3.4e38"}, {"INT32", "2147483647"}, {"INT32", "-2147483648"}, {"INT64", "-9223372036854775808"}})
    EXPECT_EQ(response_error(out(type, value)), "") << type << " " << value;
  const Tensor t = read_infer_request(
      request(R"({"name":"x","shape":[1],"datatype":"FP32","data":[0.152]})"));
  EXPECT_EQ(t.data[0], double(0.152f));
  EXPECT_EQ(read_infer_request(write_infer_request(t)).data, t.data);
}

TEST(Oip, MetadataRoundTripWithClasses) {
  ModelMetadata m;
  m.name = "lenet";
  m.platform = "ipguard";
  m.inputs = {{"input", "FP32", {-1, 1, 28, 28}}};
  m.outputs = {{"label", "INT64", {-1}}};
  m.classes = 10;
  const ModelMetadata b = read_metadata(write_metadata(m));
  EXPECT_EQ(b.name, "lenet");
  EXPECT_EQ(b.inputs[0].shape, m.inputs[0].shape);
  EXPECT_EQ(b.outputs[0].datatype, "INT64");
  EXPECT_EQ(b.classes, 10);
  // Without the parameter, a scores output's last dimension is the class count.
  const ModelMetadata c = read_metadata(
      R"({"name":"t","inputs":[{"name":"i","datatype":"FP32","shape":[-1,3,32,32]}],)"
      R"("outputs":[{"name":"o","datatype":"FP32","shape":[-1,7]}]})");
  EXPECT_EQ(c.classes, 7);
  EXPECT_THROW(read_metadata(R"({"name":"t","inputs":[]})"), OipError);
  EXPECT_THROW(read_metadata(R"({"name":"t","inputs":[{"name":"i","datatype":"FP32","shape":[-2]}],)"
                             R"("outputs":[{"name":"o","datatype":"FP32","shape":[-1]}]})"),
               OipError);
}

TEST(Oip, ErrorBodies) {
  EXPECT_EQ(read_error(write_error("bad batch")), "bad batch");
  EXPECT_EQ(read_error("<html>oops</html>"), "");
  EXPECT_EQ(read_error(""), "");
}

TEST(RemoteAddress, ParsesAndRefuses) {
  const RemoteAddress a = parse_remote_address("http://127.0.0.1:8080/v2/models/lenet5/");
  EXPECT_EQ(a.host, "127.0.0.1");
  EXPECT_EQ(a.port, 8080);
  EXPECT_EQ(a.model, "lenet5");
  EXPECT_EQ(a.base, "/v2/models/lenet5");
  EXPECT_EQ(parse_remote_address("http://host/v2/models/m").port, 80);
  EXPECT_TRUE(is_remote_address("http://x/v2/models/m"));
  EXPECT_FALSE(is_remote_address("model.h5"));
  for (const char* bad : {"https://h/v2/models/m", "http://h:99999/v2/models/m",
                          "http://h:/v2/models/m", "http://h/v1/models/m", "http://h/v2/models/",
                          "http:///v2/models/m", "http://h/v2/models/a/b"})
    EXPECT_THROW(parse_remote_address(bad), RemoteError) << bad;
}

TEST(RemoteAddress, ArgmaxTakesTheFirstOfEqualMaxima) {
  const double row[] = {0.1, 0.7, 0.2, 0.7};
  EXPECT_EQ(argmax_label(row, 4), 1);
  const double flat[] = {3, 3, 3};
  EXPECT_EQ(argmax_label(flat, 3), 0);
  const double last[] = {-5, -4, -1};
  EXPECT_EQ(argmax_label(last, 3), 2);
}

}  // namespace
}  // namespace ipg::oip
